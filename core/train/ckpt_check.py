"""Deep checks of a loaded checkpoint or bundle: the keys a resume reads, and tensor shapes against the
networks its config describes, built on the meta device (no memory allocated), before any weight is copied."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..config import ConfigError, TrainConfig


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def expected_shapes(cfg: TrainConfig, channels: int, num_classes: int) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """{name: shape} of G's and D's state dicts for ``cfg``, built on the meta device (nothing allocated)."""
    from ..models import build_models

    with torch.device("meta"):
        G, D = build_models(cfg, channels, num_classes)
    return ({k: tuple(v.shape) for k, v in G.state_dict().items()},
            {k: tuple(v.shape) for k, v in D.state_dict().items()})


def shape_problem(want: Mapping[str, tuple], have: Mapping[str, Any], what: str) -> str | None:
    """Why ``have`` (a state dict, or {name: shape}) cannot be loaded into a network with ``want``; None if it can."""
    if not isinstance(have, Mapping):
        return f"{what} is not a set of named tensors"
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    if missing or extra:
        bits = ([f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")] if missing else []) + (
            [f"unexpected {', '.join(map(str, extra[:3]))}" + (" ..." if len(extra) > 3 else "")] if extra else [])
        return f"{what} does not fit the networks its config describes ({'; '.join(bits)})"
    for k, shape in want.items():
        v = have[k]
        got = tuple(v.shape) if torch.is_tensor(v) else tuple(v) if isinstance(v, (list, tuple)) else None
        if got != shape:
            return f"{what}: {k} has shape {list(got) if got is not None else type(v).__name__}, the config needs {list(shape)}"
    return None


def check_config(raw: Any, channels: Any, num_classes: Any, validate: bool = True) -> tuple[TrainConfig, int, int]:
    """The config and data shape a checkpoint or bundle claims, checked; ValueError naming the field.

    ``validate=False`` (checkpoints) only coerces the fields: a rule added to TrainConfig.validate
    later must not make an older run's checkpoints unusable."""
    if not isinstance(raw, dict):
        raise ValueError("its 'config' is not a JSON object")
    if not _is_int(channels) or not 1 <= channels <= 4:
        raise ValueError(f"channels={channels!r} is not 1-4")
    if not _is_int(num_classes) or not 0 <= num_classes <= 100_000:
        raise ValueError(f"num_classes={num_classes!r} is not a whole number >= 0")
    try:
        cfg = TrainConfig.from_dict(raw)
        if validate:
            cfg = cfg.validate()
    except ConfigError as e:
        raise ValueError(f"its config is invalid ({e})") from None
    return cfg, channels, num_classes


def training_state_problem(state: dict[str, Any]) -> str | None:
    """Why a loaded checkpoint (format marker already checked) cannot be resumed or sampled; None if it can."""
    for key, kind in (("step", "int"), ("config", dict), ("dataset", dict), ("G", dict), ("D", dict),
                      ("opt_g", dict), ("opt_d", dict)):
        v = state.get(key)
        if v is None:
            return f"it lacks '{key}'"
        if (kind == "int" and (not _is_int(v) or v < 0)) or (kind is dict and not isinstance(v, dict)):
            return f"its '{key}' is not {'a step number' if kind == 'int' else 'a dictionary'}"
    ds = state["dataset"]
    try:
        cfg, channels, n = check_config(state["config"], ds.get("channels"), ds.get("num_classes"), validate=False)
        want_g, want_d = expected_shapes(cfg, channels, n)
    except ValueError as e:
        return str(e)
    ema = state.get("G_ema")
    checks = [(want_g, state["G"], "G"), (want_d, state["D"], "D")]
    if ema is not None:
        checks.append((want_g, ema.get("model") if isinstance(ema, dict) else ema, "G_ema"))
    for want, have, what in checks:
        why = shape_problem(want, have, what)
        if why:
            return why
    return None
