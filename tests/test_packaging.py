"""`pip install .`: the wheel's metadata (requirements.txt as dependencies, extras, the console script) and
the installed `gan-studio` command working from outside the checkout; the launcher's dispatch."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import launcher

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("pyproject.toml", "requirements.txt", "README.md", "run_studio.py", "core", "studio", "assets")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project pip-installed (no deps: they are this interpreter's) into a --target folder, built from a
    copy of the tree so the shared checkout gets no build/ or egg-info."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    src.mkdir()
    for name in SHIPPED:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    site = tmp / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                        "--quiet", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return site


def _run(site: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_metadata_entry_point_and_files(installed):
    dist = next(installed.glob("gan_studio-*.dist-info"))
    assert "gan-studio = core.launcher:main" in (dist / "entry_points.txt").read_text()
    meta = (dist / "METADATA").read_text()
    reqs = [ln.split("#")[0].strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    for req in filter(None, reqs):
        assert f"Requires-Dist: {req}" in meta, req
    assert 'Requires-Dist: onnxruntime>=1.18; extra == "export"' in meta
    assert 'extra == "tensorboard"' in meta
    for f in ("run_studio.py", "studio/app.py", "assets/studio.css", "assets/icon.png", "core/export/standalone.py",
              "core/serve/app.py"):
        assert (installed / f).is_file(), f


def test_the_installed_command_works_outside_the_checkout(installed, tmp_path):
    script = installed / "bin" / "gan-studio"
    assert script.is_file()
    r = _run(installed, [str(script), "--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(c in r.stdout for c in ("train", "generate", "export", "serve")) and "opens the studio" in r.stdout
    r = _run(installed, [sys.executable, "-c", "import core, run_studio; print(core.__file__); print(run_studio.APP)"],
             tmp_path)
    core_file, app = r.stdout.split()
    assert Path(core_file).is_relative_to(installed) and Path(app) == installed / "studio" / "app.py"
    # no command -> the studio launcher (a bad port stops it before Streamlit starts)
    r = _run(installed, [str(script), "--port", "70000", "--no-browser"], tmp_path)
    assert r.returncode == 2 and "--port must be between 1 and 65535" in r.stderr


def test_launcher_dispatch(monkeypatch, capsys):
    import run_studio
    seen: list = []
    monkeypatch.setattr(run_studio, "main", lambda argv: seen.append(argv) or 0)
    assert launcher.main([]) == 0 and launcher.main(["--port", "8502"]) == 0
    assert launcher.main(["studio", "--no-browser"]) == 0
    assert seen == [[], ["--port", "8502"], ["--no-browser"]]
    assert launcher.main(["presets"]) == 0 and "Config fields" in capsys.readouterr().out
