"""Tests for core.data: scanning, decoding, caching, built-ins, DiffAugment."""
from __future__ import annotations

import builtins
import importlib
import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import BUILTIN_DATASETS, MIN_IMAGES, DataError, DiffAugment, ImageDataset, load_dataset, load_image, scan
from core.data.builtin import make_shapes, read_idx
from core.data.cache_evict import ENTRY_DIR

# core.data re-exports the function scan, which shadows the submodule as an attribute.
scan_mod = importlib.import_module("core.data.scan")
cache_mod = importlib.import_module("core.data.cache")


@pytest.fixture(autouse=True)
def _cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))


def _png(path: Path, colour=(200, 30, 30), size=(12, 10), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)
    return path


def _jpeg_bytes(size=(64, 48)) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _huge_png_header(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h pixels: a few dozen bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _reason(rep, name: str) -> str:
    return next(r.reason for r in rep.rejected if os.path.basename(r.path) == name)


# ------------------------------------------------------------------ scan
def test_bad_files_rejected_with_reasons(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    for i in range(3):
        _png(root / f"ok{i}.png")
    (root / "truncated.jpg").write_bytes(_jpeg_bytes()[:600])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("hello, I am not an image\n")
    (root / "bomb.png").write_bytes(_huge_png_header(20000, 20000))
    (root / "notes.txt").write_text("ignored")
    secret = _png(root / "secret.png")
    if os.geteuid() != 0:
        secret.chmod(0)
    else:  # root reads anything: simulate the permission error instead
        real_open = builtins.open

        def fake_open(p, *a, **k):
            if os.fspath(p) == str(secret):
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, *a, **k)
        monkeypatch.setattr(scan_mod, "open", fake_open, raising=False)
    try:
        rep = scan(root, workers=1)
    finally:
        secret.chmod(0o644)
    assert rep.usable == 3 and rep.ignored == 1
    assert _reason(rep, "truncated.jpg").startswith("truncated or corrupt image: ")
    assert _reason(rep, "empty.jpg") == "empty file (0 bytes)"
    assert _reason(rep, "text.png") == "not an image (format not recognised)"
    assert _reason(rep, "bomb.png") == "too large: 400000000 pixels exceeds the decompression-bomb limit"
    assert _reason(rep, "secret.png") == "permission denied"
    assert Image.MAX_IMAGE_PIXELS is not None  # protection left on
    text = rep.summary()
    assert "usable images : 3" in text and "empty file" in text
    json.dumps(rep.to_dict())


def test_moderately_oversized_image_rejected(tmp_path, monkeypatch):
    # Between 1x and 2x the limit Pillow only warns; the scan must turn that into a rejection.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _png(tmp_path / "a" / "big.png", size=(40, 40))  # 1600 px: 1.6x the (patched) limit
    rep = scan(tmp_path / "a", workers=1)
    assert rep.rejected[0].reason == "too large: 1600 pixels exceeds the decompression-bomb limit"


def test_uppercase_odd_names_and_symlink_loop(tmp_path):
    root = tmp_path / "imgs"
    _png(root / "A.PNG")
    (root / "B.JPEG").write_bytes(_jpeg_bytes())
    _png(root / "sub" / "c.Tif")
    fd = os.open(os.fsencode(str(root)) + b"/caf\xe9.png", os.O_WRONLY | os.O_CREAT)
    os.write(fd, (root / "A.PNG").read_bytes())
    os.close(fd)
    os.symlink(root, root / "sub" / "loop")  # a cycle: must terminate
    rep = scan(root, workers=1)
    assert rep.usable == 4 and not rep.rejected
    assert rep.class_names == []  # only one subfolder: unlabelled
    assert all(r.label == -1 for r in rep.images)
    assert rep.duplicate_count == 1
    json.dumps(rep.to_dict())
    assert "caf\ufffd.png" in rep.summary()
    assert rep.mode_counts == {"RGB": 4}
    assert rep.width_stats[2] == 64 and rep.grey is False


def test_class_subfolders_become_labels(tmp_path):
    root = tmp_path / "imgs"
    for cls, col in (("cats", (255, 0, 0)), ("dogs", (0, 255, 0))):
        for i in range(2):
            _png(root / cls / f"{i}.png", colour=col)
    _png(root / "dogs" / "deep" / "x.png", colour=(0, 0, 255))
    _png(root / "stray.png")
    (root / "empty_dir").mkdir()
    rep = scan(root, workers=1)
    assert rep.class_names == ["cats", "dogs"]
    assert sorted(r.label for r in rep.images) == [0, 0, 1, 1, 1]
    assert _reason(rep, "stray.png") == "not in a class subfolder"
    assert rep.class_counts() == {"cats": 2, "dogs": 3}


def test_grey_flag_and_parallel_scan_with_progress(tmp_path):
    root = tmp_path / "g"
    for i in range(12):
        _png(root / f"{i}.png", colour=i * 20, mode="L")
    calls = []
    rep = scan(root, progress=lambda d, t: calls.append((d, t)), workers=2)
    assert rep.usable == 12 and rep.grey
    assert calls[0] == (0, 12) and calls[-1] == (12, 12)


# ------------------------------------------------------------------ decode
def test_16bit_png_keeps_range(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    p = tmp_path / "deep.png"
    Image.fromarray(ramp).save(p)  # uint16 -> mode I;16
    assert Image.open(p).mode.startswith("I")
    a = load_image(p, 32, 1)
    assert a.shape == (1, 32, 32) and a.dtype == np.uint8
    assert a.min() <= 5 and a.max() >= 250
    assert np.all(np.diff(a[0, 0].astype(int)) >= 0)  # monotone, not clipped to a white band


def test_cmyk_jpeg_to_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    a = load_image(p, 16, 3).astype(int)
    r, g, b = a[:, 8, 8]
    assert r > 200 and g < 60 and b < 60


def test_palette_transparency_and_rgba_on_white(tmp_path):
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 4, 8))  # left half blue, right half index 0 = transparent
    pal.save(tmp_path / "p.png", transparency=0)
    a = load_image(tmp_path / "p.png", 8, 3)
    assert tuple(a[:, 4, 1]) == (0, 0, 255) and tuple(a[:, 4, 6]) == (255, 255, 255)

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 128)  # half-transparent red; right half fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    b = load_image(tmp_path / "a.png", 8, 3).astype(int)
    assert tuple(b[:, 4, 6]) == (255, 255, 255)
    assert b[0, 4, 1] == 255 and 120 <= b[1, 4, 1] <= 135
    grey = load_image(tmp_path / "a.png", 8, 1)
    assert grey.shape == (1, 8, 8) and grey[0, 4, 6] == 255


def test_gif_first_frame_and_1bit(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    a = load_image(tmp_path / "anim.gif", 10, 3).astype(int)
    assert a[0].min() > 240 and a[1].max() < 15
    Image.new("1", (6, 6), 1).save(tmp_path / "bw.png")
    assert load_image(tmp_path / "bw.png", 6, 1).min() == 255


def test_resize_and_center_crop(tmp_path):
    im = np.zeros((20, 40, 3), np.uint8)
    im[:, :10] = (255, 0, 0)
    im[:, 10:30] = (0, 255, 0)
    im[:, 30:] = (0, 0, 255)
    Image.fromarray(im).save(tmp_path / "wide.png")
    a = load_image(tmp_path / "wide.png", 10, 3)  # 40x20 -> 20x10 -> centre 10x10: only the green band
    assert a.shape == (3, 10, 10)
    assert a[1].min() > 230 and a[0].max() < 25 and a[2].max() < 25
    up = load_image(tmp_path / "wide.png", 64, 1)  # upscale path
    assert up.shape == (1, 64, 64)


def test_exif_orientation(tmp_path):
    im = Image.new("RGB", (20, 10), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    rep = scan(tmp_path, workers=1)
    assert (rep.images[0].width, rep.images[0].height) == (10, 20)


# ------------------------------------------------------------------ dataset + cache
def _folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def test_load_dataset_cache_reuse_and_invalidation(tmp_path, monkeypatch):
    root = _folder(tmp_path / "set", 10)
    t0 = time.perf_counter()
    ds = load_dataset(str(root), 16)
    t1 = time.perf_counter()
    assert isinstance(ds, ImageDataset) and len(ds) == 10
    assert ds.images.shape == (10, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.labels is None and ds.num_classes == 0 and ds.channels == 3
    cache_files = sorted(p.name for p in (tmp_path / "cache" / ENTRY_DIR).iterdir())
    assert f"{ds.fingerprint}.json" in cache_files and f"{ds.fingerprint}.images.npy" in cache_files
    assert not [n for n in cache_files if n.endswith(".tmp")]

    def boom(*a, **k):
        raise AssertionError("decoded again despite a warm cache")
    monkeypatch.setattr(cache_mod, "_decode_chunk", boom)
    monkeypatch.setattr(cache_mod, "scan", boom)
    t2 = time.perf_counter()
    ds2 = load_dataset(str(root), 16)
    t3 = time.perf_counter()
    assert torch.equal(ds.images, ds2.images) and ds2.fingerprint == ds.fingerprint
    assert t3 - t2 < t1 - t0
    monkeypatch.undo()
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))

    Image.new("RGB", (20, 24), (1, 2, 3)).save(root / "03.png")
    os.utime(root / "03.png", ns=(1, 1))
    ds3 = load_dataset(str(root), 16)
    assert ds3.fingerprint != ds.fingerprint
    assert ds3.images[3].max() <= 3

    f = ImageDataset.to_float(ds3.images[:2])
    assert f.dtype == torch.float32 and -1 <= f.min() and f.max() <= 1
    g1, g2 = ds3.grid_sample(4, seed=3), ds3.grid_sample(4, seed=3)
    assert g1.shape == (4, 3, 16, 16) and torch.equal(g1, g2)


def test_memmap_when_over_budget_and_labels(tmp_path):
    root = tmp_path / "lab"
    for cls in ("a", "b"):
        _folder(root / cls, 5)
    ds = load_dataset(str(root), 8, channels=1, memory_budget_mb=0)
    assert ds.images.shape == (10, 1, 8, 8) and ds.num_classes == 2
    assert ds.labels.tolist() == [0] * 5 + [1] * 5 and ds.class_names == ["a", "b"]
    grey = _folder(tmp_path / "grey", 0)
    for i in range(MIN_IMAGES):
        _png(grey / f"{i}.png", colour=i * 30, mode="L")
    assert load_dataset(str(grey), 8).channels == 1  # auto: greyscale data -> 1 channel


def test_too_few_images_and_missing_folder(tmp_path):
    root = _folder(tmp_path / "tiny", 3)
    (root / "bad.png").write_bytes(b"")
    with pytest.raises(DataError) as e:
        load_dataset(str(root), 16)
    msg = str(e.value)
    assert str(root) in msg and "found 3 usable images" in msg and "empty file" in msg
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(str(tmp_path / "nope"), 16)
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(str(root / "00.png"), 16)


def test_parallel_decode_matches_serial(tmp_path):
    root = _folder(tmp_path / "par", 12)
    calls = []
    ds = load_dataset(str(root), 8, progress=lambda d, t, phase: calls.append(phase), workers=2,
                      cache_dir=tmp_path / "c1")
    ref = np.stack([load_image(root / f"{i:02d}.png", 8, 3) for i in range(12)])
    assert np.array_equal(ds.images.numpy(), ref)
    assert {"scan", "decode"} <= set(calls)


def _pid(chunk):
    return os.getpid()


def test_map_chunks_uses_worker_processes():
    from core.data.parallel import map_chunks
    pids = list(map_chunks(_pid, [[1], [2], [3]], workers=2))
    assert len(pids) == 3 and os.getpid() not in pids


# ------------------------------------------------------------------ built-ins
def test_shapes_builtin_deterministic():
    a, la = make_shapes(64, 16)
    b, lb = make_shapes(64, 16)
    assert a.shape == (64, 3, 16, 16) and np.array_equal(a, b) and np.array_equal(la, lb)
    assert set(la.tolist()) == {0, 1, 2, 3}
    assert a.std() > 20  # not blank
    ds = load_dataset("shapes", 16)
    assert ds.images.shape == (8000, 3, 16, 16) and ds.num_classes == 4
    assert ds.class_names == ["circle", "square", "triangle", "ring"] and ds.report is None
    assert torch.equal(ds.images, torch.from_numpy(make_shapes(8000, 16)[0]))
    assert load_dataset("shapes", 16, channels=1).images.shape == (8000, 1, 16, 16)
    assert set(BUILTIN_DATASETS) >= {"shapes", "fashion-mnist", "mnist", "cifar10"}


FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FMNIST.is_dir(), reason="no local Fashion-MNIST copy")
def test_fashion_mnist_local():
    raw = read_idx(FMNIST / "train-images-idx3-ubyte.gz")
    assert raw.shape == (60000, 28, 28)
    ds = load_dataset("fashion-mnist", 28)
    assert ds.images.shape == (60000, 1, 28, 28) and ds.num_classes == 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert torch.equal(ds.images[:5, 0], torch.from_numpy(raw[:5]))
    assert ds.labels.min() == 0 and ds.labels.max() == 9


# ------------------------------------------------------------------ DiffAugment
@pytest.mark.parametrize("channels", [1, 3])
def test_diffaugment_shape_dtype_gradient(channels):
    x = (torch.rand(6, channels, 16, 16) * 2 - 1).requires_grad_(True)
    aug = DiffAugment(["color", "translation", "cutout"])
    y = aug(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    y2 = aug(x.detach(), torch.Generator().manual_seed(0))
    assert torch.equal(y.detach(), y2)
    assert not torch.equal(y2, aug(x.detach(), torch.Generator().manual_seed(1)))


def test_diffaugment_ops():
    x = torch.ones(64, 3, 16, 16)
    cut = DiffAugment("cutout")(x, torch.Generator().manual_seed(0))
    zero_frac = (cut == 0).float().mean().item()
    assert 0.1 < zero_frac <= 0.25  # an 8x8 hole, sometimes clipped at the border
    moved = DiffAugment("translation")(x, torch.Generator().manual_seed(0))
    assert ((moved == 0) | (moved == 1)).all() and (moved == 0).any()
    assert bool(DiffAugment([])) is False
    with pytest.raises(DataError, match="valid"):
        DiffAugment(["flip"])


def test_cache_keys_use_relative_paths_exactly_as_relpath(tmp_path):
    """The fast relative-path slicing in list_folder/folder_key gives relpath()'s answer, so cache
    keys stay stable (a changed key would silently re-decode every user's dataset)."""
    import hashlib
    import os

    from PIL import Image

    from core.data.cache import DECODE_VERSION, FORMAT_VERSION, folder_key
    from core.data.scan import list_folder, scan
    root = tmp_path / "d"
    for i, sub in enumerate(("a", "b", "a", "b", "b/deeper", "b/deeper")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (40 * i, 90, 200)).save(root / sub / f"img_{i}.png")
    listing = list_folder(root)
    assert [c.rel for c in listing.candidates] == [os.path.relpath(c.path, listing.root) for c in listing.candidates]
    assert any(os.sep + "deeper" + os.sep in os.sep + c.rel for c in listing.candidates)
    rep = scan(root)
    h = hashlib.sha1(f"gan-studio-cache v{FORMAT_VERSION} folder d{DECODE_VERSION} r16 c3\n".encode())
    for r in rep.images:
        h.update(os.fsencode(os.path.relpath(r.path, rep.root)) + b"\0%d\0%d\0%d\n" % (r.size, r.mtime_ns, r.label))
    assert folder_key(rep, 16, 3) == h.hexdigest()


def test_cache_evicts_least_recently_used_entries_over_the_limit(tmp_path, monkeypatch):
    import hashlib

    import numpy as np

    from core.data.cache import read_cache, write_cache
    from core.data.cache_evict import cache_entries, evict

    monkeypatch.setenv("GAN_STUDIO_CACHE_MAX_GB", "0")  # no automatic eviction while filling
    k = {n: hashlib.sha1(n.encode()).hexdigest() for n in ("old", "mid", "new", "newest")}  # keys are fingerprints
    name = {v: n for n, v in k.items()}
    d = tmp_path / ENTRY_DIR

    def put(key: str, age_s: float) -> None:
        write_cache(k[key], (4, 3, 16, 16), lambda im, lab: im.fill(7), {"source": key}, tmp_path)
        t = time.time() - age_s
        os.utime(d / f"{k[key]}.json", (t, t))

    def order() -> list[str]:
        return [name[e.key] for e in cache_entries(tmp_path)]

    for key, age in (("old", 3000), ("mid", 2000), ("new", 1000)):
        put(key, age)
    each = cache_entries(tmp_path)[0].bytes
    assert order() == ["old", "mid", "new"] and each > 3 * 16 * 16 * 4
    assert read_cache(k["old"], tmp_path) is not None  # a hit marks it used: now the newest
    assert order() == ["mid", "new", "old"]
    removed = evict(tmp_path, max_bytes=2 * each, keep=frozenset({k["mid"]}))
    assert [name[e.key] for e in removed] == ["new"]  # "mid" is protected, "old" was just used
    assert read_cache(k["new"], tmp_path) is None and read_cache(k["mid"], tmp_path) is not None
    assert not list(d.glob(f"{k['new']}.*"))
    # Just-used entries are never removed, even over the limit (another process may be opening them).
    assert evict(tmp_path, max_bytes=1) == []
    # Writing a new entry applies the limit from the environment, sparing the new entry.
    monkeypatch.setenv("GAN_STUDIO_CACHE_MAX_GB", str(1.5 * each / 2**30))
    for key in ("mid", "old"):
        t = time.time() - 5000
        os.utime(d / f"{k[key]}.json", (t, t))
    write_cache(k["newest"], (4, 3, 16, 16), lambda im, lab: im.fill(1), {"source": "n"}, tmp_path)
    assert order() == ["newest"]
    assert np.asarray(read_cache(k["newest"], tmp_path).images).max() == 1
    with pytest.raises(ValueError):  # a name the cache would not recognise as its own later
        write_cache("k1", (1, 1, 16, 16), lambda im, lab: None, {}, tmp_path)


def test_cache_cli_lists_and_clears(tmp_path, monkeypatch, capsys):
    import hashlib

    from core.cli import main
    from core.data.cache import write_cache
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path))
    key = hashlib.sha1(b"cats").hexdigest()
    write_cache(key, (2, 1, 16, 16), lambda im, lab: None, {"source": "/data/cats"}, tmp_path)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "1 entries" in out and "/data/cats" in out
    assert main(["cache", "--clear"]) == 0
    assert "Removed 1 entries" in capsys.readouterr().out
    assert not list(tmp_path.rglob(f"{key}.*"))
