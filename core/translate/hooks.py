"""Log hooks of a translation run: held-out L1/PSNR (pix2pix) every eval_every steps with best.pt by
L1, and the translation diagnosis a generate run lacks: a generator that copies its input."""
from __future__ import annotations

import math
from typing import Any

from ..diagnostics.findings import Finding

COPY_L1 = 0.02  # mean |output - input| in [0, 1] pixels below which the output is taken for its input
COPY_CHECKS = 5  # consecutive log steps before it is reported (and after which it clears)
COPY_WARMUP = 100  # steps: an untrained net may start near the identity


class TranslationMonitor:
    """``hook(trainer, row)``: adds eval/l1, eval/psnr and eval/copy_l1 to the row every ``eval_every``
    steps and at the end (pix2pix), asks for best.pt on a new lowest held-out L1, and reports the
    copying finding. State in ``extra_state["metrics"]`` so a resume continues the best so far."""

    def __init__(self, trainer: Any):
        self.every = trainer.cfg.eval_every
        self.pos = self.neg = 0  # consecutive log steps with and without copying
        self.active = False

    def __call__(self, t: Any, row: dict[str, Any]) -> list[dict[str, Any]] | None:
        events = self._copying(t, row)
        state = t.extra_state.setdefault("metrics", {})
        last = state.get("last_step", 0) if isinstance(state.get("last_step"), int) else 0
        s = t.step_count
        due = self.every > 0 and (s // self.every > last // self.every or (t.finishing and s > last and s >= self.every))
        if not due:
            return events or None
        scores = t.task.evaluate()
        state["last_step"] = s
        if not scores:
            return events or None
        row.update(scores)
        value, best = scores["eval/l1"], state.get("best")
        if math.isfinite(value) and (best is None or value < best) and t.weights_finite():
            state.update(best=value, best_step=s, metric="eval/l1")
            t.best_requested = True
        events.append({"type": "eval", "metric": "eval/l1", "value": value, "psnr": scores["eval/psnr"],
                       "best_value": state.get("best"), "best_step": state.get("best_step"),
                       "message": f"Held-out L1 {value:.4f}, PSNR {scores['eval/psnr']:.2f} dB (best L1 "
                                  f"{state['best']:.4f} at step {state['best_step']})"})
        return events

    def _copying(self, t: Any, row: dict[str, Any]) -> list[dict[str, Any]]:
        v = row.get("diag/copy_l1")
        if not isinstance(v, (int, float)) or t.step_count < COPY_WARMUP:
            return []
        copying = v / 2 < COPY_L1  # the row's value is in [-1, 1] units
        self.pos, self.neg = (self.pos + 1, 0) if copying else (0, self.neg + 1)
        if copying and not self.active and self.pos >= COPY_CHECKS:
            self.active = True
            f = Finding("copies_input", "warning", {"copy_l1": v / 2, "threshold": COPY_L1},
                        f"The generator's output has differed from its input by under {COPY_L1:.0%} of the pixel range "
                        f"for {COPY_CHECKS} log steps: it is copying its input instead of translating it.",
                        "Lower l1_weight (pix2pix) or identity_weight (cyclegan), or check that A and B really differ.")
            return [f.to_event("started", since=t.step_count)]
        if self.active and self.neg >= COPY_CHECKS:
            self.active = False
            return [{"type": "finding", "kind": "copies_input", "severity": "warning", "status": "cleared",
                     "evidence": {}, "fix": {}, "suggestion": "",
                     "explanation": "The generator no longer copies its input."}]
        return []
