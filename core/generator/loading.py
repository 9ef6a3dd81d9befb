"""Find and load a trained generator: a run folder (latest, best or a step), a checkpoint, or an exported bundle."""
from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from ..train.checkpoint import (
    BEST_NAME,
    CheckpointError,
    latest_valid_checkpoint,
    list_checkpoints,
    load_usable_checkpoint,
)
from .bundle import find_bundle_in, load_bundle
from .loaded import LoadedGenerator, generator_from_state


# ------------------------------------------------------------------ choosing a checkpoint
def checkpoint_choices(run_dir: str | Path) -> list[tuple[str, Path]]:
    """(label, path) of the checkpoints of a run: "latest", "best" (when best.pt exists), then every
    periodic one newest first. Empty when the run has none yet."""
    folder = Path(run_dir) / "checkpoints"
    steps = list_checkpoints(folder)
    out: list[tuple[str, Path]] = []
    if steps:
        out.append((f"latest (step {steps[-1][0]:,})", steps[-1][1]))
    best = folder / BEST_NAME
    if best.is_file():
        out.append(("best", best))
    out += [(f"step {s:,}", p) for s, p in reversed(steps)]
    return out


def resolve_checkpoint(run_dir: str | Path, which: str | int | None = "latest") -> Path:
    """The checkpoint file of ``run_dir`` for ``which``: "latest", "best", a step number, or a path."""
    run_dir = Path(run_dir)
    folder = run_dir / "checkpoints"
    w = "latest" if which in (None, "") else which
    if isinstance(w, str) and w.lower() == "latest":
        found = latest_valid_checkpoint(folder)
        if found is None:
            raise CheckpointError(f"{run_dir} has no usable checkpoint yet (train it longer, or wait for the first save)")
        return found[0]
    if isinstance(w, str) and w.lower() == "best":
        p = folder / BEST_NAME
        if not p.is_file():
            raise CheckpointError(f"{run_dir} has no {BEST_NAME} (it is written when an evaluation metric improves); "
                                  "use --checkpoint latest")
        return p
    if isinstance(w, int) or (isinstance(w, str) and w.isdigit()):
        step = int(w)
        for s, p in list_checkpoints(folder):
            if s == step:
                return p
        have = ", ".join(str(s) for s, _ in list_checkpoints(folder)) or "none"
        raise CheckpointError(f"{run_dir} has no checkpoint for step {step} (available: {have})")
    p = Path(w)
    if not p.is_absolute() and not p.exists():
        p = folder / p
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {w}")
    return p


# ------------------------------------------------------------------ loading
def load_generator(path: str | Path, map_location: str | torch.device = "cpu", checkpoint: str | int | None = None,
                   with_discriminator: bool = False) -> LoadedGenerator:
    """``path`` is a run folder (``checkpoint``: latest valid by default, "best", a step), a checkpoint file,
    or an exported safetensors bundle (FILE.safetensors or its FILE.json); the EMA generator is preferred.

    Nothing is ever unpickled beyond tensors: checkpoints load with ``weights_only=True``, bundles are
    safetensors + JSON. A file that is not ours raises CheckpointError naming it.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"not found: {p}")
    if p.is_dir() and not (p / "checkpoints").is_dir():
        b = find_bundle_in(p)
        if b is not None:
            p = b
        else:
            raise CheckpointError(f"{p} is neither a run folder (no checkpoints/ inside) nor an exported bundle")
    if p.is_file() and p.suffix.lower() in (".safetensors", ".json"):
        if with_discriminator:
            raise CheckpointError(f"{p} is an exported generator bundle: it holds no discriminator")
        return load_bundle(p, map_location)
    if p.is_dir():
        if checkpoint in (None, "", "latest"):
            found = latest_valid_checkpoint(p / "checkpoints", map_location)
            if found is None:
                raise CheckpointError(f"{p} has no usable checkpoint yet (train it longer, or wait for the first save)")
            ckpt_path, state = found
        else:
            ckpt_path = resolve_checkpoint(p, checkpoint)
            state = load_usable_checkpoint(ckpt_path, map_location)
    else:
        _refuse_programs(p)
        ckpt_path, state = p, load_usable_checkpoint(p, map_location)
    return generator_from_state(state, ckpt_path, with_discriminator=with_discriminator)


def _refuse_programs(p: Path) -> None:
    """TorchScript and ONNX exports hold programs: GAN Studio never runs them, it reads only checkpoints and bundles."""
    if p.suffix.lower() == ".onnx":
        raise CheckpointError(f"{p} is an ONNX graph: run it with onnxruntime. GAN Studio loads only its checkpoints "
                              "(.pt) and safetensors bundles (.safetensors / .json)")
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                program = any("/code/" in n for n in zf.namelist())
        except (zipfile.BadZipFile, OSError):
            return
        if program:
            raise CheckpointError(f"{p} is a TorchScript program, not a checkpoint: load it with torch.jit.load "
                                  "if you trust it. GAN Studio never executes code from a file")
