"""Type checks of what a run folder's status.json and config.json hold: a field of the wrong type is dropped and named."""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from .config import TrainConfig

# status.json fields the studio and the CLI read, and the kind each must be ("count": an int >= 0).
STATUS_KINDS = {"state": "state", "step": "count", "total_steps": "count", "pid": "count", "host": "text",
                "message": "text", "device": "text", "updated": "time", "elapsed_s": "number",
                "img_per_s": "number", "eta_s": "number", "threads": "count"}
# config.json's fields beside the config, as the readers use them.
META_KINDS = {"created": "time", "dataset": "object", "versions": "object", "forked_from": "object",
              "distributed": "object"}
_CONFIG_KINDS = {f.name: {"int": "int", "float": "number", "bool": "bool", "str": "text"}[f.type]
                 for f in fields(TrainConfig)}
_WANT = {"state": "a run state", "count": "a whole number >= 0", "text": "text", "time": "a time in seconds",
         "number": "a finite number", "object": "a JSON object", "int": "a whole number", "bool": "true or false"}


def _fits(v: Any, kind: str, states: tuple[str, ...]) -> bool:
    num = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if kind == "state":
        return v in states
    if kind in ("count", "int"):
        return isinstance(v, int) and not isinstance(v, bool) and (kind == "int" or v >= 0)
    if kind == "number":
        return num
    if kind == "time":  # localtime() overflows far beyond any real timestamp
        return num and 0 <= v < 1e11
    if kind == "text":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    return isinstance(v, dict)  # object


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_fields(raw: dict[str, Any], kinds: dict[str, str], where: str,
                 states: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """(``raw`` without the fields whose value is not of their kind, one problem line per dropped field)."""
    out, problems = {}, []
    for k, v in raw.items():
        kind = kinds.get(k)
        if kind is None or v is None or _fits(v, kind, states):
            out[k] = v
        else:
            problems.append(f"{where}: {k}={_short(v)} is not {_WANT[kind]}; it was ignored")
    return out, problems


def check_config(raw: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """A run's config with each known field of the right type (ints may stand for floats); unknown ones kept."""
    cfg, problems = check_fields({k: (float(v) if _CONFIG_KINDS.get(k) == "number" and isinstance(v, int)
                                      and not isinstance(v, bool) else v) for k, v in raw.items()},
                                 _CONFIG_KINDS, where)
    return cfg, problems
