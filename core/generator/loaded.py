"""A trained generator as loaded (network, config, classes, provenance), built from a checkpoint's state."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, TrainConfig
from ..fsutil import read_json
from ..models import build_models
from ..train.checkpoint import CheckpointError


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


def _run_meta(ckpt_path: Path) -> tuple[Path | None, dict[str, Any]]:
    """The run folder holding ``ckpt_path`` (run/checkpoints/x.pt) and its config.json meta, if any."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else None
    if run is None:
        return None, {}
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


def class_labels(g: LoadedGenerator, seeds: list[int], class_id: int | str | None = None) -> torch.Tensor | None:
    """Labels for a conditional generator: ``class_id`` (index or class name) for all, else seed % classes.
    None for unconditional generators (asking for a class there is an error)."""
    if not g.num_classes:
        if class_id not in (None, ""):
            raise ConfigError("class", "this generator is not conditional (it was trained without class labels)")
        return None
    if class_id in (None, ""):
        return torch.tensor([int(s) % g.num_classes for s in seeds], dtype=torch.long)
    return torch.full((len(seeds),), class_index(g, class_id), dtype=torch.long)


def class_index(g: LoadedGenerator, class_id: int | str) -> int:
    if isinstance(class_id, str) and not class_id.lstrip("-").isdigit():
        if class_id in g.class_names:
            return g.class_names.index(class_id)
        raise ConfigError("class", f"unknown class {class_id!r}; valid: {', '.join(g.class_names)}")
    i = int(class_id)
    if not 0 <= i < g.num_classes:
        raise ConfigError("class", f"class index must be between 0 and {g.num_classes - 1}, got {i}")
    return i
