"""Data in, unusual image files (#19 finding 6): 1 px and sliver-shaped images, animated and multi-page
files, EXIF-rotated JPEGs, and file or folder names with a newline or a leading dash."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from faultkit import ROOT, TINY_CLI, rgb_png
from PIL import Image, features

from core.cli import main as cli_main
from core.data import load_dataset, load_image, scan
from core.data.cache import cached_scan

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def good_pngs(root: Path, n: int) -> Path:
    for i in range(n):
        rgb_png(root / f"ok{i}.png", seed=i, size=(20, 20))
    return root


def by_name(report) -> dict[str, object]:
    return {os.path.basename(r.path): r for r in [*report.images, *report.rejected]}


def halves_jpeg(path: Path, orientation: int) -> Path:
    """32x16 px, left half black, right half white as stored, with an EXIF Orientation tag."""
    a = np.zeros((16, 32, 3), np.uint8)
    a[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(path, quality=95, exif=exif.tobytes())
    return path


def frames_file(path: Path, **kw) -> Path:
    """Three 20x20 frames or pages: red, green, blue."""
    fr = [Image.new("RGB", (20, 20), c) for c in (RED, GREEN, BLUE)]
    fr[0].save(path, save_all=True, append_images=fr[1:], **kw)
    assert Image.open(path).n_frames == 3
    return path


def test_tiny_and_sliver_images_are_rejected_naming_their_size(tmp_path):
    """1x1, 7x7, 10000x10, 10x10000 and 1x10000 px images: rejected with their size and the rule, in the
    scan and therefore in what load_dataset trains on; 8x8 and exactly 4:1 (40x10) are still used."""
    root = good_pngs(tmp_path / "d", 8)
    for name, size in {"one.png": (1, 1), "seven.png": (7, 7), "wide.png": (10000, 10), "tall.png": (10, 10000),
                       "thin.png": (1, 10000), "eight.png": (8, 8), "four_to_one.png": (40, 10)}.items():
        Image.new("RGB", size, (200, 100, 50)).save(root / name)
    rep = scan(root, workers=0)
    got = by_name(rep)
    reason = {n: getattr(r, "reason", "used") for n, r in got.items()}
    assert reason["one.png"] == "too small: 1x1 px; at least 8 px on the short side", reason
    assert reason["seven.png"].startswith("too small: 7x7 px")
    assert reason["thin.png"].startswith("too small: 1x10000 px")
    assert reason["wide.png"] == ("extreme aspect ratio: 10000x10 px (1000:1); the centre square would keep "
                                  "0.1 % of it, at most 4:1 is used"), reason
    assert reason["tall.png"].startswith("extreme aspect ratio: 10x10000 px (1000:1)")
    assert reason["eight.png"] == reason["four_to_one.png"] == "used"
    assert rep.usable == 10 and rep.reason_counts() == {"too small": 3, "extreme aspect ratio": 2}
    assert "too small: 1x1 px" in rep.summary()
    ds = load_dataset(str(root), 16, workers=0)
    assert len(ds) == rep.usable == 10  # the scan's count is what training uses
    assert ds.images.shape == (10, 3, 16, 16)


@pytest.mark.parametrize("kind", ["gif", "webp", "tif", "apng"])
def test_multi_frame_files_use_the_first_frame_and_the_scan_says_so(tmp_path, kind):
    """Animated GIF / WebP / PNG and multi-page TIFF: the first frame is trained on, and the scan lists
    each such file as a note (report, JSON, the cached scan, the CLI summary)."""
    if kind == "webp" and not features.check("webp"):
        pytest.skip("this Pillow has no WebP")
    root = good_pngs(tmp_path / "d", 8)
    name = {"gif": "anim.gif", "webp": "anim.webp", "tif": "pages.tif", "apng": "anim.png"}[kind]
    opts = {"gif": dict(duration=50, loop=0), "webp": dict(duration=50, lossless=True), "tif": {},
            "apng": dict(duration=50)}[kind]
    frames_file(root / name, **opts)
    rep = cached_scan(root, workers=0)
    assert rep.usable == 9 and not rep.rejected
    assert [(os.path.basename(f.path), f.note) for f in rep.file_notes] == [(name, "3 frames; the first is used")]
    assert "1 file has several frames (animated or multi-page); the first frame of each is used." in rep.notes
    out = rep.summary()
    assert f"{name}: 3 frames; the first is used" in out and "the first frame of each is used" in out
    assert json.loads(json.dumps(rep.to_dict()))["file_notes"] == [{"path": str(root / name),
                                                                     "note": "3 frames; the first is used"}]
    assert cached_scan(root, workers=0).file_notes == rep.file_notes  # the warm scan (from its cache) keeps them
    ds = load_dataset(str(root), 16, workers=0)
    i = [r.path for r in rep.images].index(str(root / name))
    px = ds.images[i].float().mean(dim=(1, 2))
    assert px[0] > 240 and px[1] < 15 and px[2] < 15, px  # red: the first frame


# Stored left half black, right half white. As a viewer shows it: which of (top, bottom, left, right) is white.
SHOWN = {1: "right", 3: "left", 6: "bottom", 8: "top"}


def _white_side(a: np.ndarray) -> str:
    g = a.astype(float).mean(axis=0)  # (R, R)
    r = g.shape[0] // 2
    sides = {"top": g[:r // 2].mean(), "bottom": g[-(r // 2):].mean(),
             "left": g[:, :r // 2].mean(), "right": g[:, -(r // 2):].mean()}
    assert max(sides.values()) > 200 and min(sides.values()) < 55, sides
    return max(sides, key=sides.get)


def test_exif_rotated_jpegs_are_used_as_a_viewer_shows_them(tmp_path):
    """Orientation 3, 6, 8 (and 1): the scan's size, load_image (the Data page preview decodes with it)
    and the training tensors all show the picture turned as a photo viewer turns it."""
    root = good_pngs(tmp_path / "d", 4)
    for o in SHOWN:
        halves_jpeg(root / f"o{o}.jpg", o)
    rep = scan(root, workers=0)
    sizes = {os.path.basename(r.path): (r.width, r.height) for r in rep.images}
    assert sizes["o1.jpg"] == sizes["o3.jpg"] == (32, 16) and sizes["o6.jpg"] == sizes["o8.jpg"] == (16, 32)
    ds = load_dataset(str(root), 16, workers=0)
    order = [os.path.basename(r.path) for r in rep.images]
    for o, side in SHOWN.items():
        assert _white_side(load_image(root / f"o{o}.jpg", 16, 3)) == side, o
        assert _white_side(ds.images[order.index(f"o{o}.jpg")].numpy()) == side, o


ODD = ["-rf.png", "a\nb.png", "--help.png"]


def test_file_names_with_a_newline_or_a_leading_dash(tmp_path):
    """Scanned and used; the JSON report keeps the real names, the text summary shows a newline as \\n
    (a raw one split a report line in two), and a folder whose name ends in a newline still loads."""
    root = good_pngs(tmp_path / "d\n", 6)
    for i, name in enumerate(ODD):
        rgb_png(root / name, seed=50 + i)
    (root / "-bad\n.png").write_bytes(b"not an image")
    rep = scan(root, workers=0)
    used = {os.path.basename(r.path) for r in rep.images}
    assert set(ODD) <= used and rep.usable == 9
    assert [(os.path.basename(r.path), r.reason) for r in rep.rejected] == [
        ("-bad\n.png", "not an image (format not recognised)")]
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert {os.path.basename(i["path"]) for i in d["images"]} == used
    out = rep.summary()
    assert "-bad\\n.png: not an image" in out and "d\\n" in out.splitlines()[0], out
    assert not [ln for ln in out.splitlines() if ln.startswith(".png")], out
    ds = load_dataset(str(root), 16, workers=0)  # the trailing newline is the folder's, not stray whitespace
    assert len(ds) == 9


def test_cli_on_a_folder_named_dash_x_with_a_newline(tmp_path, monkeypatch, capsys):
    """`scan ./-x…` and `train --data=-x…` work; `scan -x…` and `train --data -x…`, which argparse reads
    as options, fail with a line that says how to write the name."""
    name = "-x\nnl"
    good_pngs(tmp_path / name, 8)
    rgb_png(tmp_path / name / "--help.png", seed=9)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["scan", "./" + name]) == 0
    assert "usable images : 9" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli_main(["scan", name])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "starts with '-'" in err and "scan ./-x" in err, err
    with pytest.raises(SystemExit) as e:
        cli_main(["train", "--data", name])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--data=-x" in err and "--data ./-x" in err, err
    rc = cli_main(["train", f"--data={name}", *TINY_CLI, "--steps", "1", "--runs-dir", str(tmp_path / "runs"),
                   "--quiet"])
    assert rc == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert (cfg.get("config") or cfg)["data"] == name


def test_data_page_shows_size_rejections_frame_notes_and_odd_names(tmp_path, monkeypatch):
    """The Data page scans a folder of all of these without an exception: the size reasons and the odd
    names (escaped) in the rejected table, the animated file in a notes table, the frames note shown."""
    st = pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    root = good_pngs(tmp_path / "d", 8)
    Image.new("RGB", (1, 1)).save(root / "one.png")
    Image.new("RGB", (10000, 10)).save(root / "wide.png")
    frames_file(root / "anim.gif", duration=50, loop=0)
    halves_jpeg(root / "o6.jpg", 6)
    rgb_png(root / "a\nb.png", seed=30)
    (root / "-bad\n.png").write_bytes(b"not an image")
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=120)
        at.run()
        at.segmented_control(key="data_source").set_value("Image folder").run()
        at.text_input(key="data_folder").input(str(root))
        next(b for b in at.button if b.label == "Scan").click().run()
        assert not at.exception, [e.value for e in at.exception]
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Usable images"] == "11" and metrics["Rejected"] == "3", metrics
        shown = " ".join(df.value.to_csv() for df in at.dataframe)
        for text in ("one.png", "too small: 1x1 px", "wide.png", "extreme aspect ratio: 10000x10 px",
                     "-bad\\n.png", "anim.gif", "3 frames; the first is used"):
            assert text in shown, (text, shown)
        captions = " ".join(str(c.value) for c in at.caption)
        assert "the first frame of each is used" in captions, captions
    finally:
        st.cache_resource.clear()


def test_odd_names_survive_the_worker_processes(tmp_path):
    """The same names through the scan's and the decoder's worker processes (pickled paths)."""
    root = good_pngs(tmp_path / "d", 6)
    for i, name in enumerate(ODD):
        buf = io.BytesIO()
        Image.new("RGB", (12, 12), (10 * i, 0, 0)).save(buf, "PNG")
        (root / name).write_bytes(buf.getvalue())
    ds = load_dataset(str(root), 16, workers=2)
    assert len(ds) == 9 and {os.path.basename(r.path) for r in ds.report.images} >= set(ODD)
