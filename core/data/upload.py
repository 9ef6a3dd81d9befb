"""Images uploaded through the browser (files or a zip) into a managed folder under the runs root: size-bounded, zip-slip and bomb safe.

The studio may run on a machine whose disk the user cannot reach (a lab GPU box): the Data page
hands the uploaded bytes here. Every file lands under ``<runs root>/uploads/<name>/`` and nowhere
else; a zip keeps its folder structure (class subfolders), minus anything that could escape or
explode. What is written is then scanned like any folder, with the same bad-file report.
"""
from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..fsutil import atomic_write_bytes
from .errors import DataError
from .scan import IMAGE_EXTENSIONS

UPLOADS = "uploads"
MAX_TOTAL_BYTES = 4 * 1024**3     # everything one upload may write, zip contents counted uncompressed
MAX_FILE_BYTES = 256 * 1024**2    # one image (a 256 MB PNG is already far beyond any training use)
MAX_FILES = 200_000
MAX_RATIO = 200                   # uncompressed / compressed size of one zip member: more is a bomb


@dataclass
class UploadReport:
    folder: Path
    written: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)

    def summary(self) -> str:
        s = f"{self.written:,} image file(s) saved to {self.folder}"
        return s + (f"; {len(self.skipped):,} skipped" if self.skipped else "")


def uploads_folder(runs_root: str | Path, name: str) -> Path:
    """``<runs root>/uploads/<name>``: the name reduced to letters, digits, '-', '_' and '.'; never a path."""
    safe = re.sub(r"[-.]{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "-", name)).strip("-.")[:60] or "upload"
    return Path(runs_root).expanduser() / UPLOADS / safe


def _safe_parts(name: str) -> list[str] | None:
    """A member path as safe relative parts, or None: absolute, drive letters, '..', or an empty name."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or any(part in ("", "..") or ":" in part for part in p.parts):
        return None
    parts = [part for part in p.parts if part != "."]
    if not parts or any(part.startswith(".") for part in parts):  # hidden files and __MACOSX-like metadata
        return None
    return parts


class _Writer:
    def __init__(self, folder: Path):
        self.root = folder.resolve()
        self.report = UploadReport(folder)

    def add(self, parts: list[str], data: bytes, label: str | None = None) -> None:
        name = label or "/".join(parts)
        if os.path.splitext(parts[-1])[1].lower() not in IMAGE_EXTENSIONS:
            self.report.skipped.append((name, "not an image file (png/jpg/jpeg/webp/bmp/gif/tif/tiff)"))
            return
        if len(data) > MAX_FILE_BYTES:
            self.report.skipped.append((name, f"larger than {MAX_FILE_BYTES // 1024**2} MB"))
            return
        if self.report.bytes + len(data) > MAX_TOTAL_BYTES:
            raise DataError(f"upload: more than {MAX_TOTAL_BYTES // 1024**3} GB in all; split it into smaller uploads")
        if self.report.written >= MAX_FILES:
            raise DataError(f"upload: more than {MAX_FILES:,} files; split it into smaller uploads")
        target = self.root.joinpath(*parts)
        # Belt and braces after _safe_parts: the resolved parent must stay inside the upload folder.
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(self.root):
            self.report.skipped.append((name, "would be written outside the upload folder"))
            return
        if target.is_symlink():
            self.report.skipped.append((name, "a link is in its place"))
            return
        atomic_write_bytes(target, data, fsync=False, inside=self.root)
        self.report.written += 1
        self.report.bytes += len(data)


def save_upload(folder: Path, files: list[tuple[str, BinaryIO | bytes]]) -> UploadReport:
    """Write uploaded ``(file name, bytes or file object)`` pairs into ``folder``; a .zip is extracted safely."""
    folder.mkdir(parents=True, exist_ok=True)
    w = _Writer(folder)
    for fname, src in files:
        base = os.path.basename(fname.replace("\\", "/")) or "unnamed"
        if base.lower().endswith(".zip"):
            _extract(w, io.BytesIO(src) if isinstance(src, bytes) else src, base)
            continue
        parts = _safe_parts(base)
        if parts is None:
            w.report.skipped.append((fname, "not a usable file name"))
            continue
        w.add(parts, src if isinstance(src, bytes) else src.read())
    return w.report


def _extract(w: _Writer, fileobj: BinaryIO, zip_name: str) -> None:
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        w.report.skipped.append((zip_name, f"not a readable zip ({e})"))
        return
    with zf:
        for info in zf.infolist():
            label = f"{zip_name}:{info.filename}"
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                w.report.skipped.append((label, "a symbolic link"))
                continue
            parts = _safe_parts(info.filename)
            if parts is None:
                w.report.skipped.append((label, "its path leaves the folder or is hidden"))
                continue
            if info.file_size > MAX_FILE_BYTES:
                w.report.skipped.append((label, f"larger than {MAX_FILE_BYTES // 1024**2} MB"))
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1024**2:
                w.report.skipped.append((label, f"compressed more than {MAX_RATIO}x: a zip bomb"))
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(MAX_FILE_BYTES + 1)  # never trust the declared size
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
                w.report.skipped.append((label, f"cannot be read ({e})"))
                continue
            if len(data) > MAX_FILE_BYTES:
                w.report.skipped.append((label, f"larger than {MAX_FILE_BYTES // 1024**2} MB"))
                continue
            w.add(parts, data, label)
