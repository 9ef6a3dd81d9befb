"""The tree's shape: no import circles, one package per family, sys.path left alone, small files, lint clean."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.import_cycles import cycles, import_graph

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_circles():
    graph = import_graph()
    assert graph["core.cli"] >= {"core.train.cli", "core.generator.cli", "core.export.cli"}  # the graph sees lazy imports
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_families_are_packages_not_prefixed_siblings():
    core = ROOT / "core"
    assert not [p.name for p in core.glob("*.py") if p.stem.split("_")[0] in ("export", "latent", "generate")]
    for pkg in ("generator", "export", "latent"):
        assert (core / pkg / "__init__.py").is_file()


def test_sys_path_is_touched_only_by_the_streamlit_entry_point():
    hits = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
            if ".git" not in p.parts and "sys.path.insert" in p.read_text(encoding="utf-8", errors="replace")
            and p.name != "test_structure.py"]
    assert hits == ["studio/app.py"], hits


def test_no_file_in_core_or_studio_is_over_450_lines():
    big = {str(p.relative_to(ROOT)): n for pkg in ("core", "studio") for p in (ROOT / pkg).rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not big, big


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (requirements-dev.txt has it)")
def test_ruff_is_clean_with_the_projects_config():
    r = subprocess.run(["ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
