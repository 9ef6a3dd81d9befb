"""`python -m core scan` reports translation layouts: paired A/B, side-by-side AB, unpaired A/B and trainA/trainB."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image
from translate_data import make_paired, make_unpaired

from core.data.translation_scan import find_layout, layout_report

ROOT = Path(__file__).resolve().parent.parent


def scan(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "scan", str(folder)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_scan_reports_paired_folders_with_unmatched_names(tmp_path):
    root = make_paired(tmp_path / "p", n=6, size=16)
    Image.new("RGB", (16, 16)).save(root / "A" / "lonely.png")
    r = scan(root)
    assert r.returncode == 0, r.stderr
    assert "translation layout" in r.stdout and "6 pairs" in r.stdout and "task=pix2pix" in r.stdout
    assert "unmatched in A: lonely.png" in r.stdout
    assert "no same-named twin" in r.stdout  # the layout's note


def test_side_by_side_and_unpaired_layouts(tmp_path):
    sbs = find_layout(make_paired(tmp_path / "s", n=5, size=16, layout="side-by-side"))
    assert sbs is not None and sbs.kind == "side_by_side" and len(sbs.pairs) == 5
    for names in (("A", "B"), ("trainA", "trainB")):
        lay = find_layout(make_unpaired(tmp_path / names[0], n=4, size=16, names=names))
        assert lay is not None and lay.kind == "unpaired" and (len(lay.files_a), len(lay.files_b)) == (4, 4)
        assert "task=cyclegan" in layout_report(lay)


def test_plain_image_folders_are_no_translation_layout(tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    for i in range(6):
        Image.new("RGB", (20, 20), (i * 30, 0, 0)).save(d / f"{i}.png")
    Image.new("RGB", (40, 20)).save(d / "wide.png")  # one wide photo among squares is not an AB dataset
    assert find_layout(d) is None
    r = scan(d)
    assert r.returncode == 0 and "translation layout" not in r.stdout
    assert find_layout(tmp_path / "missing") is None
