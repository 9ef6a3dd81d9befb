"""Log-step hooks attached to every run (diagnostics, periodic quality metrics).

A hook is ``hook(trainer, row) -> list[event dict] | None``, called at every log step *before*
the metrics row is written, so it may add keys to ``row`` (e.g. ``metric/swd``); each returned
event (``{"type": "finding", ...}``) is appended to events.jsonl and passed to ``on_event``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .trainer import Trainer

Hook = Callable[["Trainer", dict], "list[dict[str, Any]] | None"]

# Modules that provide ``training_hooks(trainer) -> list[Hook]``.
HOOK_MODULES = ("core.diagnostics", "core.metrics.monitor")


def default_hooks(trainer: "Trainer") -> list[Hook]:
    hooks: list[Hook] = []
    for name in HOOK_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that feature is not installed in this build
                continue
            raise
        hooks.extend(mod.training_hooks(trainer))
    return hooks
