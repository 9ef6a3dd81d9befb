"""Translation data: detect paired (A/ + B/ same names, or side-by-side AB images) and unpaired (A/ + B/,
trainA/ + trainB/) layouts, decode them at the run size, and crop/flip both sides of a pair alike."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..data.decode import load_image, resize_center_crop, to_rgb_or_l
from ..data.errors import DataError
from ..data.scan import display_path, scan_path

EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SIDE_PAIRS = (("A", "B"), ("trainA", "trainB"))
MIN_PAIRS = 5  # at least one held-out pair and a few to train on
N_HELD_OUT = 8
SPLIT_SEED = 1234


@dataclass
class Layout:
    """What a folder holds for translation, before decoding: for the scan, the Data page and the loader."""
    folder: str
    kind: str  # "paired" (A/ + B/ same names), "side_by_side" (AB images) or "unpaired"
    pairs: list[tuple[str, str]] = field(default_factory=list)  # paired: (A file, B file); side_by_side: (file, file)
    files_a: list[str] = field(default_factory=list)
    files_b: list[str] = field(default_factory=list)
    unmatched_a: list[str] = field(default_factory=list)  # names in A/ with no twin in B/ (paired)
    unmatched_b: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, why): e.g. not twice as wide as high
    mismatched: list[tuple[str, tuple[int, int], tuple[int, int]]] = field(default_factory=list)  # (name, A size, B size)
    notes: list[str] = field(default_factory=list)

    @property
    def paired(self) -> bool:
        return self.kind in ("paired", "side_by_side")

    def summary(self) -> str:
        where = display_path(self.folder)
        if self.kind == "unpaired":
            return f"{where}: unpaired, {len(self.files_a)} images in A, {len(self.files_b)} in B"
        s = f"{where}: {len(self.pairs)} pairs ({'A/ + B/ same names' if self.kind == 'paired' else 'side-by-side AB images'})"
        if self.unmatched_a or self.unmatched_b:
            s += f"; unmatched: {len(self.unmatched_a)} in A, {len(self.unmatched_b)} in B"
        if self.mismatched:
            s += f"; {len(self.mismatched)} pairs differ in size"
        if self.rejected:
            s += f"; {len(self.rejected)} rejected"
        return s


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTS and not p.name.startswith("."))


def _sides(folder: Path) -> tuple[Path, Path] | None:
    for a, b in SIDE_PAIRS:
        if (folder / a).is_dir() and (folder / b).is_dir():
            return folder / a, folder / b
    return None


def _size_mismatches(pairs: list[tuple[str, str]]) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    out = []
    for a, b in pairs:
        try:
            with Image.open(a) as ia, Image.open(b) as ib:  # headers only: no decoding
                if ia.size != ib.size:
                    out.append((Path(a).name, ia.size, ib.size))
        except Exception:  # an unreadable file is reported when it is decoded, with its name
            continue
    return out


def detect_layout(folder: str | os.PathLike, task: str) -> Layout:
    """The translation layout of ``folder`` for ``task`` (pix2pix needs pairs; cyclegan takes any A/B
    folders). DataError naming the folder when nothing usable is there."""
    root = scan_path(folder)
    where = display_path(str(root))
    sides = _sides(root)
    if sides is not None:
        fa, fb = _images(sides[0]), _images(sides[1])
        for side, files in ((sides[0], fa), (sides[1], fb)):
            if not files:
                raise DataError(f"{display_path(str(side))}: holds no images (png/jpg/jpeg/webp/bmp/gif/tif/tiff)")
        if task == "cyclegan":
            return Layout(str(root), "unpaired", files_a=[str(p) for p in fa], files_b=[str(p) for p in fb])
        # Pairs by file name without extension: a.jpg in A/ and a.png in B/ are one pair.
        by_b = {p.stem: p for p in fb}
        by_a = {p.stem: p for p in fa}
        pairs = [(str(p), str(by_b[p.stem])) for p in fa if p.stem in by_b]
        lay = Layout(str(root), "paired", pairs=pairs, files_a=[a for a, _ in pairs], files_b=[b for _, b in pairs],
                     unmatched_a=[p.name for p in fa if p.stem not in by_b], unmatched_b=[p.name for p in fb if p.stem not in by_a])
        lay.mismatched = _size_mismatches(pairs)
        if lay.mismatched:
            n, sa, sb = lay.mismatched[0]
            lay.notes.append(f"{len(lay.mismatched)} pairs differ in size, e.g. {n}: {sa[0]} x {sa[1]} in A, {sb[0]} x {sb[1]} in B; "
                             "both sides are centre-cropped and resized alike, so a different aspect ratio misaligns them")
        if lay.unmatched_a or lay.unmatched_b:
            names = (lay.unmatched_a + lay.unmatched_b)[:5]
            lay.notes.append(f"{len(lay.unmatched_a) + len(lay.unmatched_b)} files have no same-named twin and are left out "
                             f"(e.g. {', '.join(names)})")
        if not pairs:
            raise DataError(f"{where}: {sides[0].name}/ and {sides[1].name}/ share no file names, so there are no pairs "
                            f"for pix2pix (e.g. {', '.join(names)}). Name each B image like its A image, or use task=cyclegan.")
        return lay
    if task == "cyclegan":
        raise DataError(f"{where}: cyclegan needs two subfolders, A/ and B/ (or trainA/ and trainB/), one per domain")
    src = root / "train" if (root / "train").is_dir() and not _images(root) else root
    files = _images(src)
    if not files:
        raise DataError(f"{where}: no A/ and B/ subfolders and no side-by-side AB images; pix2pix needs A/ + B/ "
                        "holding same-named files, or images with the input on the left half and the target on the right")
    lay = Layout(str(root), "side_by_side")
    for p in files:
        try:
            with Image.open(p) as im:
                w, h = im.size
        except Exception as e:  # Pillow raises many types on bad files
            lay.rejected.append((p.name, f"cannot read ({e})"))
            continue
        if abs(w - 2 * h) > max(2, w // 50):
            lay.rejected.append((p.name, f"{w} x {h} is not twice as wide as high"))
            continue
        lay.pairs.append((str(p), str(p)))
    if not lay.pairs:
        why = lay.rejected[0][1] if lay.rejected else "none"
        raise DataError(f"{display_path(str(src))}: no side-by-side AB images (input left, target right, twice as wide as "
                        f"high; e.g. {lay.rejected[0][0] if lay.rejected else ''}: {why}), and no A/ and B/ subfolders")
    if lay.rejected:
        lay.notes.append(f"{len(lay.rejected)} images are left out (e.g. {lay.rejected[0][0]}: {lay.rejected[0][1]})")
    return lay


def load_size(resolution: int) -> int:
    """Images are decoded a little larger and randomly cropped back (286 -> 256 in the paper): jitter."""
    return resolution + resolution // 8


def _halves(path: str, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with Image.open(path) as im:
            im.seek(0)
            im = ImageOps.exif_transpose(im) or im
            im = to_rgb_or_l(im).convert("L" if channels == 1 else "RGB")
            w, h = im.size
            halves = [resize_center_crop(im.crop(box), size) for box in ((0, 0, w // 2, h), (w // 2, 0, w, h))]
    except Exception as e:
        raise DataError(f"{display_path(path)}: cannot decode image ({e})") from e
    out = []
    for half in halves:
        a = np.asarray(half, dtype=np.uint8)
        out.append(np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1)))
    return out[0], out[1]


def _grey(paths: list[str]) -> bool:
    for p in paths[:16]:
        try:
            with Image.open(p) as im:
                if im.mode not in ("1", "L", "I;16", "I"):
                    return False
        except Exception:
            return False
    return True


def _fingerprint(paths: list[str], *extra) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update(repr(extra).encode())
    return "translate-" + h.hexdigest()


def _split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out, training) indices: a fixed seed, so every session of a run holds out the same items."""
    n_hold = min(N_HELD_OUT, n // 5)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return perm[:n_hold].sort().values, perm[n_hold:].sort().values


@dataclass
class TranslationDataset:
    """Decoded translation data, uint8 N x C x L x L per side at ``load_size(resolution)``.

    Paired: ``a[i]`` and ``b[i]`` are one pair. Unpaired: independent stacks. ``held_a``/``held_b`` are
    the held-out items (centre-cropped to the resolution) for the monitor triplets and eval/l1."""
    a: torch.Tensor
    b: torch.Tensor
    held_a: torch.Tensor
    held_b: torch.Tensor
    paired: bool
    channels: int
    resolution: int
    fingerprint: str
    source: str
    layout: Layout
    class_names: list[str] = field(default_factory=list)
    num_classes: int = 0
    labels: None = None
    report: None = None

    to_float = staticmethod(lambda x: x.float().div_(127.5).sub_(1.0))  # uint8 -> [-1, 1], as ImageDataset's

    def __len__(self) -> int:
        return int(self.a.shape[0]) if self.paired else max(int(self.a.shape[0]), int(self.b.shape[0]))

    def grid_sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """Held-out A and B images interleaved (uint8, at the resolution): what reals.png shows."""
        k = max(1, n // 2)
        a, b = self.held_a[:k], self.held_b[:k]
        m = min(len(a), len(b))
        return torch.stack([a[:m], b[:m]], 1).flatten(0, 1).clone()


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    o = (x.shape[-1] - size) // 2
    return x[..., o:o + size, o:o + size]


def random_crop_flip(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random ``size`` crop and a coin-flip mirror per image, drawn on x's device (no host sync). Call
    it on concat(A, B) along channels, so both sides of a pair get the same crop and flip."""
    n, _, h, w = x.shape
    dev = x.device
    oy = torch.randint(0, h - size + 1, (n, 1), device=dev, generator=generator)
    ox = torch.randint(0, w - size + 1, (n, 1), device=dev, generator=generator)
    flip = torch.rand(n, 1, device=dev, generator=generator) < 0.5
    r = torch.arange(size, device=dev)
    rows = oy + r
    cols = torch.where(flip, ox + size - 1 - r, ox + r)
    idx = torch.arange(n, device=dev)[:, None, None]
    return x[idx, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def load_translation_data(folder: str, task: str, resolution: int, channels: int = 0) -> TranslationDataset:
    """Detect the layout of ``folder`` and decode it for ``task``; DataError naming the folder or file."""
    lay = detect_layout(folder, task)
    size = load_size(resolution)
    if lay.paired and len(lay.pairs) < MIN_PAIRS:
        raise DataError(f"{display_path(lay.folder)}: found {len(lay.pairs)} pairs, need at least {MIN_PAIRS}")
    if not lay.paired:
        for name, files in (("A", lay.files_a), ("B", lay.files_b)):
            if len(files) < MIN_PAIRS:
                raise DataError(f"{display_path(lay.folder)}: found {len(files)} images in {name}, need at least {MIN_PAIRS}")
    every = [p for pair in lay.pairs for p in pair] if lay.paired else lay.files_a + lay.files_b
    channels = channels or (1 if _grey(every[:8] + every[-8:]) else 3)
    if lay.kind == "side_by_side":
        halves = [_halves(p, size, channels) for p, _ in lay.pairs]
        a = np.stack([h[0] for h in halves])
        b = np.stack([h[1] for h in halves])
    else:
        fa, fb = (lay.files_a, lay.files_b)
        a = np.stack([load_image(p, size, channels) for p in fa])
        b = np.stack([load_image(p, size, channels) for p in fb])
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    hold_a, train_a = _split(len(ta))
    hold_b, train_b = (hold_a, train_a) if lay.paired else _split(len(tb))
    fp = _fingerprint(sorted(set(every)), lay.kind, resolution, channels)
    return TranslationDataset(a=ta[train_a], b=tb[train_b], held_a=center_crop(ta[hold_a], resolution).contiguous(),
                              held_b=center_crop(tb[hold_b], resolution).contiguous(), paired=lay.paired,
                              channels=channels, resolution=resolution, fingerprint=fp, source=lay.folder, layout=lay)
