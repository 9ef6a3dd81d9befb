"""Write generated images as they are made, to a folder or a zip: bounded memory, no half-written file under a final name, one-line errors."""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import torch

from ..config import ConfigError
from ..fsutil import atomic_write_bytes
from ..imaging import png_bytes
from .sampling import image_array

BATCH = 64  # images generated and written per round: memory stays at one batch whatever -n asks


def output_path(out: str | Path, as_zip: bool) -> Path:
    """Where the images go, checked before any work: a folder (existing or new) or a .zip file."""
    out = Path(out).expanduser()
    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip") if out.name else out / "samples.zip"
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError("--out", f"{parent} is a file, so nothing can be written under it; give a folder")
            break
    if as_zip and out.is_dir():
        raise ConfigError("--out", f"{out} is a folder; give a file name for the zip")
    if not as_zip and out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} is a file; give a folder for the images (or --zip to write a zip)")
    return out


class ImageWriter:
    """``with ImageWriter(path, as_zip) as w: w.add(name, img)``. A folder gets each PNG atomically (a full disk
    leaves only complete images); a zip is written to a temp file and renamed into place only when complete."""

    def __init__(self, out: Path, as_zip: bool):
        self.out, self.as_zip, self.count = out, as_zip, 0
        self._zip: zipfile.ZipFile | None = None
        self._tmp: str | None = None

    def __enter__(self) -> ImageWriter:
        try:
            if self.as_zip:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                fd, self._tmp = tempfile.mkstemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=self.out.parent)
                os.close(fd)
                self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED)  # PNGs are compressed already
            else:
                self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._cleanup()
            raise ConfigError("--out", f"cannot write to {self.out}: {e.strerror or e}") from None
        return self

    def add(self, name: str, img: torch.Tensor) -> None:
        data = png_bytes(image_array(img))
        try:
            if self._zip is not None:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
                self._zip.writestr(info, data)
            else:
                atomic_write_bytes(self.out / name, data, fsync=False)
        except OSError as e:
            where = self.out if self._zip is not None else self.out / name
            kept = "nothing was kept" if self._zip is not None else f"the {self.count} images before it are complete"
            raise ConfigError("--out", f"could not write {where}: {e.strerror or e} ({kept})") from None
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._zip is None:
            return
        try:
            self._zip.close()
            if exc_type is None:
                os.replace(self._tmp, self.out)
                self._tmp = None
        except OSError as e:
            if exc_type is None:
                raise ConfigError("--out", f"could not write {self.out}: {e.strerror or e} (nothing was kept)") from None
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None


def check_seeds(first: int, n: int) -> list[int]:
    """Seeds first .. first+n-1, each a valid generator seed (0 <= seed < 2^63), or a ConfigError naming --seed."""
    if first < 0:
        raise ConfigError("--seed", f"seeds are non-negative integers, got {first}")
    if first + n > 2**63:
        raise ConfigError("--seed", f"seed + n must stay below 2^63 = {2**63:,}; got seed {first:,} with n {n}")
    return list(range(first, first + n))


def write_images(images: torch.Tensor, seeds: list[int], out: str | Path, as_zip: bool = False,
                 names: list[str] | None = None) -> Path:
    """One PNG per image named seed_NNNNNN.png (or ``names[i]``) into the folder ``out``, or into the zip ``out``
    (for a notebook holding its images already; the CLI streams batches through ImageWriter)."""
    path = output_path(out, as_zip)
    with ImageWriter(path, as_zip) as w:
        for name, img in zip(names or [f"seed_{s:06d}.png" for s in seeds], images):
            w.add(name, img)
    return path
