"""Download or install the FID Inception-v3 weights into the user cache, refusing anything that fails the checks."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..metrics.features import WEIGHTS_FILE, WEIGHTS_URL

# torch.hub's convention: the file name carries the first hex digits of its SHA-256 ("-6726825d.pth").
# That prefix is the published checksum; the content check below adds that it is the network we expect.
HASH_PREFIX = WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]
PROBE_KEY = "Mixed_7c.branch_pool.conv.weight"  # a tensor only the FID Inception-v3 state dict has


class WeightsError(ValueError):
    """Weights that cannot be fetched or installed; the message names the file and what to do."""


def installed_path() -> Path:
    """Where fetch/--from put the file: GAN Studio's cache (searched by FID, see core.metrics.features)."""
    from ..data import default_cache_dir
    return default_cache_dir() / WEIGHTS_FILE


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_weights(path: str | os.PathLike) -> str:
    """The file's SHA-256 after checking its prefix and that it loads as tensors only with the FID keys."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such file")
    digest = _sha256(p)
    if not digest.startswith(HASH_PREFIX):
        raise WeightsError(f"{p}: checksum mismatch (SHA-256 {digest[:16]}..., expected it to start with "
                           f"{HASH_PREFIX}): not the FID Inception weights {WEIGHTS_FILE}, or a damaged copy")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)  # tensors only: a pickle payload is refused
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for a bad file
        raise WeightsError(f"{p}: not a loadable weights file ({type(e).__name__})") from None
    if not isinstance(sd, dict) or PROBE_KEY not in sd:
        raise WeightsError(f"{p}: does not hold the FID Inception-v3 weights (no {PROBE_KEY})")
    return digest


def install_weights(src: str | os.PathLike, force: bool = False) -> Path:
    """Check ``src`` and copy it atomically into the user cache; returns where it now is."""
    verify_weights(src)
    dst = installed_path()
    if dst.exists() and not force and dst.resolve() != Path(src).resolve():
        verify_weights(dst)  # a good copy is already there: keep it
        return dst
    if dst.exists() and dst.resolve() == Path(src).resolve():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def fetch_weights(force: bool = False, progress: bool = True) -> Path:
    """Download WEIGHTS_URL once (torch.hub's downloader: progress bar, SHA-256 prefix check), then install it."""
    dst = installed_path()
    if dst.is_file() and not force:
        try:
            verify_weights(dst)
            return dst
        except WeightsError:
            pass  # a damaged copy: download again
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".download-") as tmp:
        part = Path(tmp) / WEIGHTS_FILE
        try:
            torch.hub.download_url_to_file(WEIGHTS_URL, str(part), hash_prefix=HASH_PREFIX, progress=progress)
        except RuntimeError as e:  # torch.hub's checksum failure
            raise WeightsError(f"the download from {WEIGHTS_URL} failed its checksum ({e}); nothing was installed") from None
        except OSError as e:
            raise WeightsError(f"cannot download {WEIGHTS_URL} ({e}). On a machine without internet, download it "
                               f"elsewhere and run: python -m core weights --from FILE") from None
        return install_weights(part, force=True)
