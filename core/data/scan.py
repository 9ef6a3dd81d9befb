"""Scan an image folder: find, fully decode and vet every file; report usable images, rejects, stats."""
from __future__ import annotations

import hashlib
import io
import os
import re
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .errors import DataError
from .parallel import chunked, map_chunks
from .vetting import frames_note, shape_problem

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# Only these decoders may run, whatever the file is called: a ".jpg" that is really EPS would
# otherwise start Ghostscript. (Multi-picture camera JPEGs open through the JPEG decoder.)
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "DIB", "GIF", "TIFF")
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
NOT_IN_CLASS = "not in a class subfolder"
SCAN_VERSION = 2  # 2: size rules and file notes; a version-1 cached scan lacks both, so it is redone
ProgressFn = Callable[[int, int], None]


@dataclass
class ImageRecord:
    path: str            # absolute path as the OS gave it (may hold surrogate escapes)
    label: int           # class index, -1 when the folder is unlabelled
    width: int           # after EXIF orientation
    height: int
    mode: str            # Pillow's mode of the file as stored (L, RGB, P, I;16, CMYK, ...)
    size: int = 0        # bytes on disk, with mtime_ns part of the cache key
    mtime_ns: int = 0
    digest: str = ""     # content hash, for duplicate detection


@dataclass
class RejectedFile:
    path: str
    reason: str


@dataclass
class FileNote:
    path: str            # a usable file that has something worth saying, e.g. several frames
    note: str


def display_path(path: str) -> str:
    """A printable form of a path whose bytes may not be valid UTF-8."""
    return os.fsencode(path).decode("utf-8", errors="replace")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown_path(path: str) -> str:
    """display_path with control characters escaped: a newline in a name split a report line in two."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], display_path(path))


@dataclass
class ScanReport:
    root: str
    images: list[ImageRecord] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    ignored: int = 0                       # files with other extensions (and hidden files)
    class_names: list[str] = field(default_factory=list)
    width_stats: tuple[int, int, int] = (0, 0, 0)    # min, median, max
    height_stats: tuple[int, int, int] = (0, 0, 0)
    mode_counts: dict[str, int] = field(default_factory=dict)
    duplicate_count: int = 0               # files whose exact content already appeared
    duplicate_examples: list[tuple[str, str]] = field(default_factory=list)
    grey: bool = False                     # every usable image is greyscale by mode
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    file_notes: list[FileNote] = field(default_factory=list)

    @property
    def usable(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return len(self.class_names) >= 2

    def reason_counts(self) -> Counter:
        """Rejections grouped by kind (the part of the reason before any ':' detail)."""
        return Counter(r.reason.split(":", 1)[0] for r in self.rejected)

    def class_counts(self) -> dict[str, int]:
        c = Counter(im.label for im in self.images)
        return {name: c.get(i, 0) for i, name in enumerate(self.class_names)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (paths in printable form)."""
        return {
            "root": display_path(self.root),
            "usable": self.usable, "rejected_count": len(self.rejected), "ignored": self.ignored,
            "class_names": list(self.class_names), "class_counts": self.class_counts(),
            "width_stats": list(self.width_stats), "height_stats": list(self.height_stats),
            "mode_counts": dict(self.mode_counts), "grey": self.grey,
            "duplicate_count": self.duplicate_count,
            "duplicate_examples": [[display_path(a), display_path(b)] for a, b in self.duplicate_examples],
            "elapsed_s": round(self.elapsed_s, 3), "notes": list(self.notes),
            "images": [{**asdict(r), "path": display_path(r.path)} for r in self.images],
            "rejected": [{"path": display_path(r.path), "reason": r.reason} for r in self.rejected],
            "file_notes": [{"path": display_path(n.path), "note": n.note} for n in self.file_notes],
        }

    # Exact state for the scan cache: real paths survive because json escapes lone surrogates.
    def _state(self) -> dict[str, Any]:
        d = asdict(self)
        d["version"] = SCAN_VERSION
        return d

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> ScanReport:
        if d.get("version") != SCAN_VERSION:
            raise ValueError("scan cache version mismatch")
        d = dict(d)
        d.pop("version")
        d["images"] = [ImageRecord(**r) for r in d["images"]]
        d["rejected"] = [RejectedFile(**r) for r in d["rejected"]]
        d["file_notes"] = [FileNote(**n) for n in d["file_notes"]]
        d["width_stats"] = tuple(d["width_stats"])
        d["height_stats"] = tuple(d["height_stats"])
        d["duplicate_examples"] = [tuple(p) for p in d["duplicate_examples"]]
        return cls(**d)

    def summary(self) -> str:
        root = shown_path(self.root)
        lines = [f"Scanned {root} in {self.elapsed_s:.1f} s",
                 f"  usable images : {self.usable}",
                 f"  rejected      : {len(self.rejected)}",
                 f"  ignored       : {self.ignored} (not image files)"]
        if self.class_names:
            counts = self.class_counts()
            lines.append(f"  classes       : {len(self.class_names)}")
            lines += [f"    {name}: {n}" for name, n in counts.items()]
        else:
            lines.append("  classes       : none (unlabelled)")
        if self.images:
            w, h = self.width_stats, self.height_stats
            lines.append(f"  width  min/median/max : {w[0]} / {w[1]} / {w[2]}")
            lines.append(f"  height min/median/max : {h[0]} / {h[1]} / {h[2]}")
            modes = ", ".join(f"{m} {n}" for m, n in sorted(self.mode_counts.items(), key=lambda kv: -kv[1]))
            lines.append(f"  modes         : {modes}" + ("  (all greyscale)" if self.grey else ""))
        if self.duplicate_count:
            lines.append(f"  duplicates    : {self.duplicate_count} files repeat another file's exact content")
            lines += [f"    {shown_path(a)} == {shown_path(b)}" for a, b in self.duplicate_examples]
        if self.rejected:
            lines.append("  rejection reasons:")
            lines += [f"    {n:6d}  {why}" for why, n in self.reason_counts().most_common()]
            lines.append("  rejected files (first 20):")
            lines += [f"    {shown_path(r.path)}: {r.reason}" for r in self.rejected[:20]]
        lines += [f"  note: {n}" for n in self.notes]
        if self.file_notes:
            lines.append("  files with notes (first 20):")
            lines += [f"    {shown_path(n.path)}: {n.note}" for n in self.file_notes[:20]]
        return "\n".join(lines)


# ------------------------------------------------------------------ listing
@dataclass
class Candidate:
    path: str
    rel: str
    top: str | None      # immediate subfolder of the root it lives under, None for root files
    size: int
    mtime_ns: int


@dataclass
class Listing:
    root: str
    candidates: list[Candidate]
    ignored: int
    rejected: list[RejectedFile]   # entries that could not even be listed/stat'ed


def _skip_name(name: str) -> bool:
    # Hidden files and macOS resource forks (._x.jpg, __MACOSX/) are never images people meant.
    return name.startswith(".") or name == "__MACOSX"


def list_folder(folder: str | os.PathLike) -> Listing:
    """Walk `folder` recursively (following symlinks, but never into the same real directory
    twice, so link loops terminate) and stat every file with an image extension."""
    root = os.path.abspath(os.fspath(folder))
    if not os.path.isdir(root):
        raise DataError(f"{display_path(root)}: not a folder (or it does not exist)")
    cands: list[Candidate] = []
    rejected: list[RejectedFile] = []
    ignored = 0
    visited: set[str] = set()

    def onerror(e: OSError) -> None:
        why = "permission denied" if isinstance(e, PermissionError) else f"unreadable: {e.strerror or e}"
        rejected.append(RejectedFile(e.filename or root, why))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        # Sorted so the image order, the labels and the cache key are the same on every machine.
        dirnames[:] = sorted(d for d in dirnames if not _skip_name(d))
        rel_dir = os.path.relpath(dirpath, root)
        top = None if rel_dir == "." else rel_dir.split(os.sep, 1)[0]
        rel_prefix = "" if rel_dir == "." else rel_dir + os.sep  # == relpath(file, root), without a call per file
        for name in sorted(filenames):
            if _skip_name(name) or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                ignored += 1
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except PermissionError:
                rejected.append(RejectedFile(path, "permission denied"))
                continue
            except OSError as e:  # e.g. a dangling symlink
                rejected.append(RejectedFile(path, f"unreadable: {e.strerror or e}"))
                continue
            cands.append(Candidate(path, rel_prefix + name, top, st.st_size, st.st_mtime_ns))
    return Listing(root, cands, ignored, rejected)


def listing_key(listing: Listing) -> str:
    """Fingerprint of what a scan would look at: paths, sizes, modification times."""
    h = hashlib.sha1(f"scan-v{SCAN_VERSION}\0".encode())
    h.update(os.fsencode(listing.root) + b"\0")
    for c in listing.candidates:
        h.update(os.fsencode(c.rel) + b"\0%d\0%d\n" % (c.size, c.mtime_ns))
    h.update(f"ignored={listing.ignored};rejected={len(listing.rejected)}".encode())
    return h.hexdigest()


# ------------------------------------------------------------------ per-file check
def _is_grey(im: Image.Image) -> bool:
    if im.mode in GREY_MODES:
        return True
    if im.mode in ("P", "PA"):
        pal = im.getpalette() or []
        return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))
    return False


def _formats() -> tuple[str, ...]:
    # Image.open raises KeyError for a format this Pillow build lacks (e.g. no libwebp).
    Image.init()
    return tuple(f for f in ALLOWED_FORMATS if f in Image.OPEN)


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def check_file(path: str) -> tuple[bool, Any]:
    """Fully decode one file. Returns (True, (w, h, mode, grey, digest, frames)) or (False, reason).
    Top-level so worker processes can unpickle it; never raises."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        return False, "permission denied"
    except OSError as e:
        return False, f"unreadable: {e.strerror or e}"
    if not data:
        return False, "empty file (0 bytes)"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        with warnings.catch_warnings():
            # Oversized images become errors here (Pillow only warns up to 2x its limit).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_formats()) as im:
                mode = im.mode
                w, h = im.size
                im.load()  # the full decode: catches truncated and corrupt files
                grey = _is_grey(im)
                orient = im.getexif().get(0x0112, 1)
                try:  # animated GIF/WebP/PNG, multi-page TIFF: only the first frame is trained on
                    frames = int(getattr(im, "n_frames", 1))
                except Exception:  # a damaged later frame; the first, the one used, decoded fine
                    frames = -1
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        m = _BOMB_PIXELS.search(str(e))
        n = m.group(1) if m else "?"
        return False, f"too large: {n} pixels exceeds the decompression-bomb limit"
    except UnidentifiedImageError:
        return False, "not an image (format not recognised)"
    except MemoryError:
        return False, "too large: not enough memory to decode"
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError... on bad data
        detail = str(e) or type(e).__name__
        return False, f"truncated or corrupt image: {detail}"
    if orient in (5, 6, 7, 8):  # rotated by 90 degrees once EXIF orientation is applied
        w, h = h, w
    bad = shape_problem(w, h)
    return (False, bad) if bad else (True, (w, h, mode, grey, digest, frames))


def _check_chunk(paths: list[str]) -> list[tuple[bool, Any]]:
    return [check_file(p) for p in paths]


# ------------------------------------------------------------------ scan
def scan(folder: str | os.PathLike, progress: ProgressFn | None = None, workers: int | None = None,
         listing: Listing | None = None) -> ScanReport:
    """Scan `folder` recursively and return a ScanReport; never raises on a bad file.

    Labels: when at least two immediate subfolders hold usable images, each such subfolder is a
    class (sorted by name) and images directly in the root are rejected as "not in a class
    subfolder" (they would otherwise be silently mislabelled). Otherwise the set is unlabelled
    (label -1) and images anywhere in the tree are used.
    """
    t0 = time.perf_counter()
    listing = listing or list_folder(folder)
    cands = listing.candidates
    total = len(cands)
    if progress:
        progress(0, total)
    results: list[tuple[bool, Any]] = []
    # Small chunks keep progress smooth and the pool balanced; up to 32 files amortise the IPC.
    size = max(1, min(32, total // 16))
    for res in map_chunks(_check_chunk, chunked([c.path for c in cands], size), workers=workers):
        results.extend(res)
        if progress:
            progress(len(results), total)

    rep = ScanReport(root=listing.root, ignored=listing.ignored, rejected=list(listing.rejected))
    ok: list[tuple[Candidate, tuple]] = []
    for c, (good, payload) in zip(cands, results):
        if good:
            ok.append((c, payload))
        else:
            rep.rejected.append(RejectedFile(c.path, payload))

    tops = sorted({c.top for c, _ in ok if c.top is not None})
    if len(tops) >= 2:
        rep.class_names = [display_path(t) for t in tops]
        index = {t: i for i, t in enumerate(tops)}
        in_root = [(c, p) for c, p in ok if c.top is None]
        rep.rejected += [RejectedFile(c.path, NOT_IN_CLASS) for c, _ in in_root]
        if in_root:
            rep.notes.append(f"{len(in_root)} images directly in the root were left out: with class "
                             "subfolders present, every image must be inside one.")
        ok = [(c, p) for c, p in ok if c.top is not None]
    else:
        index = {}
    for c, (w, h, mode, _grey, digest, frames) in ok:
        label = index.get(c.top, -1) if index else -1
        rep.images.append(ImageRecord(c.path, label, w, h, mode, c.size, c.mtime_ns, digest))
        if frames != 1:
            rep.file_notes.append(FileNote(c.path, frames_note(frames)))
    if rep.file_notes:
        n = len(rep.file_notes)
        rep.notes.append(f"{n} file{' has' if n == 1 else 's have'} several frames (animated or multi-page); "
                         "the first frame of each is used.")

    if ok:
        ws = [r.width for r in rep.images]
        hs = [r.height for r in rep.images]
        rep.width_stats = (min(ws), int(statistics.median(ws)), max(ws))
        rep.height_stats = (min(hs), int(statistics.median(hs)), max(hs))
        rep.mode_counts = dict(Counter(r.mode for r in rep.images))
        rep.grey = all(p[3] for _, p in ok)
    seen: dict[str, str] = {}
    for r in rep.images:
        if r.digest in seen:
            rep.duplicate_count += 1
            if len(rep.duplicate_examples) < 5:
                rep.duplicate_examples.append((seen[r.digest], r.path))
        else:
            seen[r.digest] = r.path
    if rep.duplicate_count:
        rep.notes.append("exact duplicates make a GAN over-represent those images; consider removing them.")
    rep.elapsed_s = time.perf_counter() - t0
    return rep


def scan_path(folder: str | os.PathLike) -> Path:
    """Expand ~ and check that `folder` is a directory, with an actionable message if not."""
    p = Path(os.path.expanduser(os.fspath(folder)))
    if not p.exists():
        raise DataError(f"{display_path(str(p))}: no such folder. Give the path of a folder of images.")
    if not p.is_dir():
        raise DataError(f"{display_path(str(p))}: is a file, not a folder. Give the folder that holds the images.")
    return p
