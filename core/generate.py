"""Load a trained generator (run folder, checkpoint or exported bundle) and generate images reproducibly."""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .models import build_models
from .train.checkpoint import CheckpointError, latest_valid_checkpoint, list_checkpoints, load_checkpoint

BEST_NAME = "best.pt"


@dataclass
class LoadedGenerator:
    G: nn.Module
    cfg: TrainConfig
    step: int
    channels: int
    num_classes: int
    source: Path
    class_names: list[str]
    uses_ema: bool
    D: nn.Module | None = None  # only when asked for (nearest images in D's feature space)
    dataset: dict[str, Any] = field(default_factory=dict)  # source, fingerprint, count, channels, resolution, ...
    run_dir: Path | None = None  # the run folder the checkpoint belongs to, when known

    @property
    def resolution(self) -> int:
        return int(self.cfg.resolution)

    @property
    def latent_dim(self) -> int:
        return int(self.cfg.latent_dim)


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
        from .export import find_bundle_in
        b = find_bundle_in(p)
        if b is not None:
            p = b
        else:
            raise CheckpointError(f"{p} is neither a run folder (no checkpoints/ inside) nor an exported bundle")
    if p.is_file() and p.suffix.lower() in (".safetensors", ".json"):
        if with_discriminator:
            raise CheckpointError(f"{p} is an exported generator bundle: it holds no discriminator")
        from .export import load_bundle
        return load_bundle(p, map_location)
    if p.is_dir():
        if checkpoint in (None, "", "latest"):
            found = latest_valid_checkpoint(p / "checkpoints", map_location)
            if found is None:
                raise CheckpointError(f"{p} has no usable checkpoint yet (train it longer, or wait for the first save)")
            ckpt_path, state = found
        else:
            ckpt_path = resolve_checkpoint(p, checkpoint)
            state = load_checkpoint(ckpt_path, map_location)
    else:
        _refuse_programs(p)
        ckpt_path, state = p, load_checkpoint(p, map_location)
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


def _run_meta(ckpt_path: Path) -> tuple[Path | None, dict[str, Any]]:
    """The run folder holding ``ckpt_path`` (run/checkpoints/x.pt) and its config.json meta, if any."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else None
    if run is None:
        return None, {}
    from .fsutil import read_json
    try:
        raw = read_json(run / "config.json")
        return run, raw if isinstance(raw, dict) else {}
    except ValueError:
        return run, {}


def generator_from_state(state: dict[str, Any], source: Path, with_discriminator: bool = False) -> LoadedGenerator:
    try:
        cfg = TrainConfig.from_dict(state["config"])
        ds = dict(state["dataset"])
        G, D = build_models(cfg, ds["channels"], ds["num_classes"])
        weights = state["G_ema"]["model"] if state.get("G_ema") else state["G"]
        G.load_state_dict(weights)
        if with_discriminator:
            D.load_state_dict(state["D"])
            D.eval().requires_grad_(False)
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{source} does not match the networks its config describes "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    G.eval().requires_grad_(False)
    run_dir, meta = _run_meta(Path(source))
    run_ds = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
    dataset = {**run_ds, **ds}  # the checkpoint's numbers win; the run folder adds source and class names
    names = list(ds.get("class_names") or run_ds.get("class_names") or [])
    dataset["class_names"] = names
    if not ds["num_classes"]:
        names = []  # the generator's classes: none for an unconditional model
    elif len(names) != ds["num_classes"]:
        names = [str(i) for i in range(ds["num_classes"])]
    return LoadedGenerator(G, cfg, int(state["step"]), ds["channels"], ds["num_classes"], Path(source), names,
                           bool(state.get("G_ema")), D if with_discriminator else None, dataset, run_dir)


# ------------------------------------------------------------------ sampling
def latents(seeds: list[int], dim: int, truncation: float = 1.0) -> torch.Tensor:
    """One z per seed, independent of how many are asked for (seed s always gives the same z).

    Truncation psi < 1 resamples components outside [-2, 2] (truncated normal) then scales by psi,
    pulling samples toward the mean latent: higher fidelity, less variety.
    """
    zs = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        z = torch.randn(dim, generator=g)
        if truncation < 1.0:
            bad = z.abs() > 2.0
            while bool(bad.any()):
                z[bad] = torch.randn(int(bad.sum()), generator=g)
                bad = z.abs() > 2.0
            z = z * truncation
        zs.append(z)
    return torch.stack(zs) if zs else torch.empty(0, dim)


def class_labels(g: LoadedGenerator, seeds: list[int], class_id: int | str | None = None) -> torch.Tensor | None:
    """Labels for a conditional generator: ``class_id`` (index or class name) for all, else seed % classes.
    None for unconditional generators (asking for a class there is an error)."""
    if not g.num_classes:
        if class_id not in (None, ""):
            from .config import ConfigError
            raise ConfigError("class", "this generator is not conditional (it was trained without class labels)")
        return None
    if class_id in (None, ""):
        return torch.tensor([int(s) % g.num_classes for s in seeds], dtype=torch.long)
    return torch.full((len(seeds),), class_index(g, class_id), dtype=torch.long)


def class_index(g: LoadedGenerator, class_id: int | str) -> int:
    from .config import ConfigError
    if isinstance(class_id, str) and not class_id.lstrip("-").isdigit():
        if class_id in g.class_names:
            return g.class_names.index(class_id)
        raise ConfigError("class", f"unknown class {class_id!r}; valid: {', '.join(g.class_names)}")
    i = int(class_id)
    if not 0 <= i < g.num_classes:
        raise ConfigError("class", f"class index must be between 0 and {g.num_classes - 1}, got {i}")
    return i


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for the latents ``z`` (batched so any count fits in memory), on the CPU."""
    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i:i + batch_size].to(dev)
        yb = y[i:i + batch_size].to(dev) if y is not None else None
        out.append(G(zb, yb).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def generate_seeds(g: LoadedGenerator, seeds: list[int], truncation: float = 1.0,
                   class_id: int | str | None = None, batch_size: int = 64) -> torch.Tensor:
    """Images in [-1, 1] for ``seeds``: the same seed, truncation and class always give the same image."""
    z = latents(seeds, g.latent_dim, truncation)
    return generate(g.G, z, class_labels(g, seeds, class_id), batch_size)


def image_array(img: torch.Tensor):
    """One (C, H, W) image in [-1, 1] (or uint8) -> an HxW or HxWx3 uint8 numpy array."""
    from .imaging import to_uint8
    arr = to_uint8(img[None])[0].numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def write_images(images: torch.Tensor, seeds: list[int], out: str | Path, as_zip: bool = False) -> Path:
    """Write one PNG per image named seed_NNNNNN.png into the folder ``out``, or into the zip file ``out``."""
    from .imaging import png_bytes
    out = Path(out)
    if as_zip:
        if out.suffix.lower() != ".zip":
            out = out.with_name(out.name + ".zip") if out.name else out / "samples.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for s, img in zip(seeds, images):
                info = zipfile.ZipInfo(f"seed_{s:06d}.png", date_time=(2020, 1, 1, 0, 0, 0))  # reproducible bytes
                zf.writestr(info, png_bytes(image_array(img)))
        from .fsutil import atomic_write_bytes
        atomic_write_bytes(out, buf.getvalue(), fsync=False)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for s, img in zip(seeds, images):
        (out / f"seed_{s:06d}.png").write_bytes(png_bytes(image_array(img)))
    return out
