"""Checkpoints: full training state written atomically, loaded with weights_only=True, rotated safely."""
from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..fsutil import UnsafePathError, atomic_write_bytes, check_write_target

FORMAT = "gan-studio-checkpoint"
VERSION = 1
BEST_NAME = "best.pt"  # the checkpoint with the best quality score so far (never rotated)
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and why."""


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Serialise to memory first, then write beside the target and rename: a crash or a full disk
    at any point leaves the previous checkpoint files untouched."""
    path = Path(path)
    # In a run folder (RUN/checkpoints/x.pt) a link planted as checkpoints/ or as the file is refused.
    inside = path.parent.parent if path.parent.name == "checkpoints" else None
    try:
        if inside is not None:
            check_write_target(path, inside)
            if path.parent.is_symlink():
                raise UnsafePathError(f"{path.parent} is a symbolic link (to {os.readlink(path.parent)}); "
                                      "GAN Studio never writes checkpoints through a link in a run folder")
        buf = io.BytesIO()
        torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
        atomic_write_bytes(path, buf.getvalue(), inside=inside)
    except UnsafePathError as e:
        raise CheckpointError(str(e)) from None
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load safely: ``weights_only=True`` never runs code from the file; foreign files are refused."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as e:  # unpickling errors, truncated zip, refused globals...
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "weights only" in detail.lower() or "weights_only" in detail:
            # torch's own hint ("re-run with weights_only=False") is exactly what must not be done here.
            detail = "it holds objects other than tensors and plain data, which a safe load refuses to run"
        raise CheckpointError(f"{path} is not a usable checkpoint (corrupt, truncated, or not written by GAN Studio): "
                              f"{detail}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a GAN Studio checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer GAN Studio (format v{state.get('version')})")
    return state


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of periodic checkpoints, oldest first."""
    out = []
    for p in Path(folder).glob("step_*.pt"):
        m = _STEP_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def load_usable_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """load_checkpoint, then the deep check: every key a resume reads, and G/D/EMA tensor shapes against
    the networks its own config describes (built on the meta device). CheckpointError names the file."""
    from .ckpt_check import training_state_problem

    state = load_checkpoint(path, map_location)
    why = training_state_problem(state)
    if why:
        raise CheckpointError(f"{path} has the checkpoint format marker but cannot be used: {why}")
    return state


def latest_valid_checkpoint(folder: str | Path, map_location="cpu",
                            skipped: list[tuple[Path, str]] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """Newest checkpoint that loads and passes the deep check; corrupt or mismatched newer ones (a crash
    mid-write of a non-atomic copy, a disk error, a file from another run) are skipped, and listed in
    ``skipped`` as (path, why) when given, so resume falls back to the one before and can say so."""
    for _, p in reversed(list_checkpoints(folder)):
        try:
            return p, load_usable_checkpoint(p, map_location)
        except CheckpointError as e:
            if skipped is not None:
                skipped.append((p, str(e)))
            continue
    return None


def rotate_checkpoints(folder: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` periodic checkpoints (best.pt is never touched)."""
    cks = list_checkpoints(folder)
    for _, p in cks[:-keep] if keep > 0 else []:
        try:
            p.unlink()
        except OSError:
            pass


def state_is_finite(state_dict: dict[str, torch.Tensor]) -> bool:
    """True when every floating tensor is finite (a non-finite checkpoint must never be written)."""
    for v in state_dict.values():
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            return False
    return True


def is_finite_number(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
