"""Data in: a hostile folder. Every usable image is used, every other is listed with its reason,
nothing crashes, and Pillow's decompression-bomb protection stays on."""
from __future__ import annotations

import ast
import builtins
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from faultkit import ROOT, env_for_child, huge_png_header, jpeg_bytes, rgb_png
from PIL import Image

scan_mod = importlib.import_module("core.data.scan")

NON_UTF8 = b"caf\xe9-\xff.png"  # not valid UTF-8: only a bytes name can say it


def build_hostile_folder(root: Path) -> tuple[set[str], dict[str, str]]:
    """Write the folder; return (names of usable files, {rejected name: expected reason prefix})."""
    root.mkdir(parents=True, exist_ok=True)
    good: set[str] = set()
    for i in range(6):
        good.add(rgb_png(root / f"ok{i}.png", seed=i).name)
    (root / "UPPER.JPG").write_bytes(jpeg_bytes(seed=10))
    good.add("UPPER.JPG")
    rgb_png(root / "LOUD.PNG", seed=11)
    good.add("LOUD.PNG")
    # 16-bit greyscale PNG (mode I;16)
    ramp = (np.arange(24 * 20, dtype=np.uint16).reshape(20, 24) * 130).astype(np.uint16)
    Image.fromarray(ramp).save(root / "grey16.png")
    good.add("grey16.png")
    assert Image.open(root / "grey16.png").mode.startswith("I;16")
    (root / "cmyk.jpg").write_bytes(jpeg_bytes(seed=12, mode="CMYK"))
    good.add("cmyk.jpg")
    assert Image.open(root / "cmyk.jpg").mode == "CMYK"
    pal = Image.fromarray(np.random.default_rng(13).integers(0, 255, (18, 20, 3), dtype=np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(root / "palette_trns.png", transparency=0)
    good.add("palette_trns.png")
    assert "transparency" in Image.open(root / "palette_trns.png").info
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    good.add("anim.gif")
    assert getattr(Image.open(root / "anim.gif"), "n_frames", 1) == 3
    rgb_png(root / "sub" / "deep.png", seed=14)
    good.add("deep.png")
    with open(os.fsencode(str(root)) + b"/" + NON_UTF8, "wb") as f:
        f.write(rgb_png(root / ".tmp-src.png", seed=15).read_bytes())
    os.unlink(root / ".tmp-src.png")
    good.add(os.fsdecode(NON_UTF8))

    bad: dict[str, str] = {}
    (root / "truncated.jpg").write_bytes(jpeg_bytes(seed=16)[:700])
    bad["truncated.jpg"] = "truncated or corrupt image"
    (root / "zero.png").write_bytes(b"")
    bad["zero.png"] = "empty file (0 bytes)"
    (root / "text.png").write_text("I am a text file\n")
    bad["text.png"] = "not an image (format not recognised)"
    (root / "bomb.png").write_bytes(huge_png_header(20000, 20000))
    bad["bomb.png"] = "too large: 400000000 pixels exceeds the decompression-bomb limit"
    rgb_png(root / "secret.png", seed=17)
    bad["secret.png"] = "permission denied"
    os.symlink(root / "does-not-exist.png", root / "dangling.png")
    bad["dangling.png"] = "unreadable"
    os.symlink(root, root / "sub" / "loop")  # a directory cycle: the walk must terminate, nothing counted twice
    (root / "notes.txt").write_text("not an image, ignored")
    return good, bad


@pytest.fixture
def deny_secret(monkeypatch):
    """Root reads every file: make open() of any file named secret.png fail as for a normal user."""
    real_open = builtins.open

    def fake_open(p, *a, **k):
        if os.path.basename(os.fsdecode(p)) == "secret.png":
            raise PermissionError(13, "Permission denied", os.fsdecode(p))
        return real_open(p, *a, **k)
    monkeypatch.setattr(scan_mod, "open", fake_open, raising=False)


def _check_report(rep, good: set[str], bad: dict[str, str]) -> None:
    used = {os.path.basename(r.path) for r in rep.images}
    assert used == good
    reasons = {os.path.basename(r.path): r.reason for r in rep.rejected}
    assert set(reasons) == set(bad), reasons
    for name, prefix in bad.items():
        assert reasons[name].startswith(prefix), (name, reasons[name])
    assert rep.ignored == 1  # notes.txt
    d = json.loads(json.dumps(rep.to_dict()))  # strict JSON, the non-UTF-8 name included (printable form)
    assert any(im["path"].endswith("caf\ufffd-\ufffd.png") for im in d["images"])
    assert "too large" in rep.summary() and "secret.png: permission denied" in rep.summary()


@pytest.mark.parametrize("workers", [1, 2])
def test_hostile_folder_every_usable_image_used(tmp_path, deny_secret, workers):
    from core.data import load_dataset
    good, bad = build_hostile_folder(tmp_path / "hostile")
    default_limit = Image.MAX_IMAGE_PIXELS
    ds = load_dataset(str(tmp_path / "hostile"), 16, workers=workers)
    assert len(ds) == len(good) == 14
    assert ds.images.shape == (14, 3, 16, 16)  # mixed colour + grey: RGB
    _check_report(ds.report, good, bad)
    assert Image.MAX_IMAGE_PIXELS == default_limit and default_limit is not None


def test_unreadable_file_for_a_real_unprivileged_user():
    """chmod 000 for real: as root, fork and drop to uid 65534 (nobody) before scanning."""
    from core.data.scan import scan
    top = tempfile.mkdtemp(prefix="gs-perm-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        root = Path(top) / "imgs"
        for i in range(3):
            rgb_png(root / f"ok{i}.png", seed=i)
        secret = rgb_png(root / "secret.png", seed=9)
        secret.chmod(0)
        locked = root / "locked"
        rgb_png(locked / "hidden.png", seed=8)
        locked.chmod(0)
        if os.geteuid() != 0:
            rep = scan(root, workers=1)
            result = {"used": sorted(os.path.basename(r.path) for r in rep.images),
                      "rejected": {os.path.basename(r.path): r.reason for r in rep.rejected}}
        else:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: never return into pytest
                code = 1
                try:
                    os.close(r)
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                    rep = scan(root, workers=1)
                    out = {"used": sorted(os.path.basename(x.path) for x in rep.images),
                           "rejected": {os.path.basename(x.path): x.reason for x in rep.rejected}}
                    os.write(w, json.dumps(out).encode())
                    code = 0
                except BaseException as e:  # noqa: BLE001
                    os.write(w, json.dumps({"error": repr(e)}).encode())
                finally:
                    os._exit(code)
            os.close(w)
            data = b""
            while chunk := os.read(r, 65536):
                data += chunk
            os.close(r)
            os.waitpid(pid, 0)
            result = json.loads(data)
        assert "error" not in result, result
        assert result["used"] == ["ok0.png", "ok1.png", "ok2.png"]
        assert result["rejected"]["secret.png"] == "permission denied"
        assert result["rejected"]["locked"] == "permission denied"  # an unreadable subfolder is listed too
    finally:
        for p in (Path(top) / "imgs" / "locked", Path(top) / "imgs" / "secret.png"):
            try:
                p.chmod(0o755)
            except OSError:
                pass
        import shutil
        shutil.rmtree(top, ignore_errors=True)


def test_cli_scan_lists_every_rejected_file(tmp_path):
    """`python -m core scan` on the hostile folder: exit 0, every usable image counted, every reject named."""
    good, bad = build_hostile_folder(tmp_path / "hostile")
    (tmp_path / "hostile" / "secret.png").unlink()  # (no permission simulation across processes)
    bad.pop("secret.png")
    p = subprocess.run([sys.executable, "-m", "core", "scan", str(tmp_path / "hostile")], capture_output=True,
                       env=env_for_child(), cwd=str(ROOT), timeout=120)
    out = p.stdout.decode("utf-8")  # a non-UTF-8 name is printed with replacement characters
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert f"usable images : {len(good)}" in out
    for name in bad:
        assert name in out
    assert "Traceback" not in p.stderr.decode(errors="replace")


def test_decompression_bomb_protection_stays_on():
    """Importing every module of core and studio leaves PIL.Image.MAX_IMAGE_PIXELS at Pillow's default,
    and no source file assigns it or turns on LOAD_TRUNCATED_IMAGES."""
    code = r"""
import importlib, json, pkgutil, sys, warnings
import PIL.Image, PIL.ImageFile
default = PIL.Image.MAX_IMAGE_PIXELS
import core, studio
failed = []
for pkg in (core, studio):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if m.name.startswith("studio.pages"):
            continue  # page scripts render on import; checked statically below
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(m.name)
        except Exception as e:
            failed.append(f"{m.name}: {e!r}")
print(default, PIL.Image.MAX_IMAGE_PIXELS, PIL.ImageFile.LOAD_TRUNCATED_IMAGES, len(sys.modules))
print(json.dumps(failed))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_for_child(),
                       cwd=str(ROOT), timeout=180)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    default, now, trunc, _ = lines[0].split()
    # A module that fails to import was never checked: every one must load for the check to mean anything.
    assert json.loads(lines[1]) == [], lines[1]
    assert default == now == "89478485", p.stdout  # Pillow's documented default limit
    assert trunc == "False"
    # Static check over every source file (pages included): nobody switches the protection off.
    offenders = []
    files = [*ROOT.joinpath("core").rglob("*.py"), *ROOT.joinpath("studio").rglob("*.py"), ROOT / "run_studio.py"]
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr in ("MAX_IMAGE_PIXELS", "LOAD_TRUNCATED_IMAGES"):
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setattr":
                if any(isinstance(a, ast.Constant) and a.value in ("MAX_IMAGE_PIXELS", "LOAD_TRUNCATED_IMAGES")
                       for a in node.args):
                    offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_data_page_survives_the_hostile_folder(tmp_path, deny_secret, monkeypatch):
    """The studio's Data page scans the hostile folder without an exception and shows the rejects."""
    st = pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    good, bad = build_hostile_folder(tmp_path / "hostile")
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=120)
        at.run()
        at.segmented_control(key="data_source").set_value("Image folder").run()
        at.text_input(key="data_folder").input(str(tmp_path / "hostile"))  # the Scan form submits it
        next(b for b in at.button if b.label == "Scan").click().run()
        assert not at.exception, [e.value for e in at.exception]
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Usable images"] == str(len(good)) and metrics["Rejected"] == str(len(bad)), metrics
        shown = " ".join(str(df.value) for df in at.dataframe)
        for name in bad:
            assert name in shown, name
    finally:
        st.cache_resource.clear()
