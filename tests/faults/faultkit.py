"""Helpers for the fault-injection suite: tiny configs, subprocess runners, hostile image files."""

from __future__ import annotations

import io
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from polling import wait_for  # noqa: F401  (re-exported: the fault tests import it from here)

ROOT = Path(__file__).resolve().parents[2]




def tiny(**over):
    """A config that trains in milliseconds per step on one CPU thread."""
    from core.config import TrainConfig
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=6,
                log_every=2, sample_every=3, checkpoint_every=3, device="cpu", threads=1, ema=0.9)
    base.update(over)
    return TrainConfig(**base)


TINY_CLI = ["--resolution", "16", "--batch-size", "4", "--device", "cpu",
            "--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16", "--set", "threads=1"]


def env_for_child(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    env.update(extra)
    return env


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m core ARGS`` in a fresh interpreter; never raises on a non-zero exit."""
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True,
                          env=env_for_child(), cwd=str(ROOT), timeout=timeout)


def kill9(proc: subprocess.Popen) -> None:
    """SIGKILL and reap (a reaped child is gone; an unreaped one would linger as a zombie)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


# ------------------------------------------------------------------ hostile image files
def rgb_png(path: Path, seed: int, size=(20, 18)) -> Path:
    from PIL import Image
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def jpeg_bytes(seed: int = 0, size=(64, 48), mode: str = "RGB") -> bytes:
    from PIL import Image
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG")
    return buf.getvalue()


def huge_png_header(w: int, h: int) -> bytes:
    """A valid-looking PNG (IHDR with a correct CRC) that claims w x h pixels in a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))
