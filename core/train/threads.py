"""Adaptive CPU thread count: measure the candidates while training and keep the fastest.

Why: on a small CPU the best intra-op thread count depends on what else is running. Alone, all
cores are fastest (2 threads: ~1.6x one thread on a 2-core machine); as soon as another process
is busy (the studio's browser, a scan, another user's job) every OpenMP barrier waits for a
descheduled thread and all cores become 3-10x *slower* than one. No fixed number is right for
both, so the trainer measures: it times a short window of steps with each candidate, holds the
winner, re-checks now and then, and re-checks at once when the speed it holds drops or jumps
(the load changed). Time is counted in measured step seconds only, so pauses, sampling and
checkpoints between steps do not bias it.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..config import TrainConfig
from .device import choose_threads, physical_cores

PROBE_S = 1.0          # step seconds measured per candidate in a probe ...
MIN_STEPS = 3          # ... and at least this many steps (after one discarded warm-up step)
WINDOW_S = 3.0         # while holding, the speed is checked over windows this long
HOLD_S = 20.0          # step seconds a new winner is kept before the others are re-checked
HOLD_MAX_S = 160.0     # the hold doubles each time the same candidate wins again, up to this
CHANGE = 0.30          # a window this much slower or faster than the winner's probe -> re-probe now


def candidate_threads(cores: int) -> list[int]:
    """Thread counts worth trying: all cores, one fewer, half (for 2 cores: 1 and 2)."""
    return sorted({max(1, cores // 2), max(1, cores - 1), max(1, cores)})


class ThreadTuner:
    """Chooses the intra-op thread count from measured step times; call ``record`` after each step.

    Phases: *probe* (the current count first, then each other candidate: one warm-up step that is
    not counted, then ``PROBE_S`` seconds) -> *hold* the fastest for ``hold_s`` step seconds,
    checking its speed every ``WINDOW_S``; a change of more than ``CHANGE`` ends the hold early.
    """

    def __init__(self, candidates: list[int], start: int | None = None,
                 setter: Callable[[int], None] = torch.set_num_threads):
        if not candidates:
            raise ValueError("ThreadTuner needs at least one candidate")
        self.candidates = sorted(set(candidates))
        self.setter = setter
        self.current = start if start in self.candidates else self.candidates[-1]
        self.rates: dict[int, float] = {}  # steps/s of each candidate in the latest probe
        self.switches = 0                  # thread-count changes so far
        self.probes = 0                    # completed probes
        self.hold_s = HOLD_S
        self._winner: int | None = None    # the candidate held before the running probe
        self._held_s = 0.0
        self.setter(self.current)
        self._skip = True                  # the very first step is a warm-up anyway
        self._start_probe()

    @property
    def adaptive(self) -> bool:
        return len(self.candidates) > 1

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def apply(self) -> None:
        """Set the current count on the calling thread (thread settings are per thread)."""
        self.setter(self.current)

    def record(self, seconds: float) -> None:
        """One step just took ``seconds`` with ``self.current`` threads."""
        if not self.adaptive:
            return
        if self._skip:  # the first step after a switch pays for resizing the pool and new kernels
            self._skip = False
            return
        self._win_s += seconds
        self._win_n += 1
        need_s = PROBE_S if self._queue else WINDOW_S
        if self._win_s < need_s or self._win_n < MIN_STEPS:
            return
        rate, span = self._win_n / self._win_s, self._win_s
        self._win_s, self._win_n = 0.0, 0
        if self._queue:
            self.rates[self.current] = rate
            self._queue.pop(0)
            if self._queue:
                self._switch(self._queue[0])
            else:
                self._finish_probe()
            return
        self._held_s += span
        ref = self.rates[self.current]
        if abs(rate - ref) > CHANGE * ref:
            self.hold_s = HOLD_S  # the load changed: check again soon, not after a long hold
            self._start_probe()
        elif self._held_s >= self.hold_s:
            self._start_probe()

    def summary(self) -> dict:
        return {"threads": self.current, "candidates": self.candidates, "switches": self.switches,
                "probes": self.probes, "steps_per_s": {k: round(v, 3) for k, v in sorted(self.rates.items())}}

    # ------------------------------------------------------------------ phases
    def _switch(self, n: int) -> None:
        if n == self.current:
            return
        self.switches += 1
        self.current = n
        self.setter(n)
        self._skip = True

    def _start_probe(self) -> None:
        self._winner = self.current
        # The current count first: no switch, so no warm-up step is lost.
        self._queue = [self.current] + [c for c in self.candidates if c != self.current]
        self._win_s, self._win_n, self._held_s = 0.0, 0, 0.0

    def _finish_probe(self) -> None:
        self.probes += 1
        best = max(self.rates, key=self.rates.get)
        # A winner that keeps winning earns a longer hold (less time spent on the loser).
        self.hold_s = min(HOLD_MAX_S, self.hold_s * 2) if best == self._winner and self.probes > 1 else HOLD_S
        self._switch(best)
        self._held_s = 0.0


def make_thread_tuner(cfg: TrainConfig, device: torch.device, shared_cpu: bool,
                      world_size: int = 1) -> ThreadTuner | None:
    """A tuner for ``threads=0`` (auto) on a multi-core CPU in a single process; None otherwise
    (a fixed count, a GPU, or DDP ranks, whose step times include waiting for each other)."""
    if device.type != "cpu" or cfg.threads or world_size > 1:
        return None
    cores = physical_cores()
    cands = candidate_threads(cores)
    if len(cands) < 2:
        return None
    return ThreadTuner(cands, start=choose_threads(cfg, shared_cpu, cores))
