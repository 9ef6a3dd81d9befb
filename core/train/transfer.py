"""Transfer learning: start a new run's G, D and EMA from another run's weights (same architecture, any data)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ConfigError, TrainConfig
from .checkpoint import BEST_NAME, CheckpointError, latest_valid_checkpoint, load_usable_checkpoint

# What must match for the weights to fit: the networks' shapes. The data, loss, rates and tricks
# that do not change a tensor's shape may differ (that is the point of starting from another run).
WEIGHT_SHAPE_FIELDS = ("arch", "resolution", "latent_dim", "g_width", "d_width", "conditional", "d_norm",
                       "spectral_norm", "minibatch_std", "mapping_layers", "minibatch_disc", "pac", "attention")


def _checkpoint_of(source: str) -> Path:
    """A checkpoint file, or a run folder's best.pt (the best model), else its newest checkpoint."""
    p = Path(source).expanduser()
    if p.is_file():
        return p
    if not p.is_dir():
        raise ConfigError("init_from", f"{source}: no such run folder or checkpoint file")
    ck = p / "checkpoints"
    best = ck / BEST_NAME
    if best.is_file():
        return best
    found = latest_valid_checkpoint(ck) if ck.is_dir() else None
    if found is None:
        raise ConfigError("init_from", f"{source}: this run has no usable checkpoint to start from")
    return found[0]


def load_source(source: str, cfg: TrainConfig, channels: int, num_classes: int) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to start from and its state, checked against ``cfg`` and the new data before any
    run folder exists; a mismatch is a ConfigError naming init_from and the field that differs."""
    path = _checkpoint_of(source)
    try:
        state = load_usable_checkpoint(path)
    except CheckpointError as e:
        raise ConfigError("init_from", f"{path}: {e}") from None
    try:
        old = TrainConfig.from_dict(state["config"])
    except (ConfigError, KeyError, TypeError) as e:
        raise ConfigError("init_from", f"{path}: its config cannot be read ({e})") from None
    for f in WEIGHT_SHAPE_FIELDS:
        if getattr(old, f) != getattr(cfg, f):
            raise ConfigError("init_from", f"{path.parent.parent.name} has {f}={getattr(old, f)!r} but this run has "
                                           f"{f}={getattr(cfg, f)!r}: weights only transfer between runs whose networks "
                                           f"have the same shape (set {f}={getattr(old, f)!r})")
    ds = state.get("dataset") or {}
    if ds.get("channels") not in (None, channels):
        raise ConfigError("init_from", f"{path.parent.parent.name} was trained on {ds.get('channels')}-channel images, "
                                       f"this data has {channels}: set channels={ds.get('channels')}")
    if cfg.conditional and ds.get("num_classes") not in (None, num_classes):
        raise ConfigError("init_from", f"{path.parent.parent.name} has {ds.get('num_classes')} classes, this data has "
                                       f"{num_classes}: class embeddings cannot transfer")
    return path, state


def apply(trainer, state: dict[str, Any]) -> None:
    """Copy the source's G, D and EMA weights into a freshly built trainer (step, optimisers, RNG stay new)."""
    trainer.G.load_state_dict(state["G"])
    trainer.D.load_state_dict(state["D"])
    if trainer.ema is not None:
        trainer.ema.load_state_dict(state["G_ema"]) if state.get("G_ema") else trainer.ema.model.load_state_dict(state["G"])
