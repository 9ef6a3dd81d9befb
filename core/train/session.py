"""A training session as the studio, the CLI and the benchmarks run it: the standard log hooks
(diagnostics, periodic quality) built with plain imports, then the loop."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from ..diagnostics import DiagnosticsMonitor
from ..metrics.quality_hook import quality_hooks
from .loop import Hook, run_loop
from .trainer import Trainer


def standard_hooks(trainer: Trainer) -> list[Hook]:
    """Diagnostics and the quality monitor, for a trainer that writes a run folder (rank 0)."""
    if trainer.store is None:
        return []
    return [DiagnosticsMonitor(trainer), *quality_hooks(trainer)]


def run_training(trainer: Trainer, should_stop: Callable[[], bool] | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 on_status: Callable[[dict], None] | None = None, extra_hooks: Sequence[Hook] = ()) -> str:
    """Train ``trainer`` to its configured steps/minutes with the standard hooks (then ``extra_hooks``, e.g.
    the TensorBoard mirror); the final state."""
    return run_loop(trainer, [*standard_hooks(trainer), *extra_hooks], should_stop, on_event, on_status)
