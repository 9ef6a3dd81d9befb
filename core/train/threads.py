"""Adaptive CPU thread count: measure the candidates while training and keep the fastest.

Why: on a small CPU the best intra-op thread count depends on what else is running. Alone, all
cores are fastest (2 threads: ~1.6x one thread on a 2-core machine); as soon as another process
is busy (the studio's browser, a scan, another user's job) every OpenMP barrier waits for a
descheduled thread and all cores become 3-10x *slower* than one. No fixed number is right for
both, so the trainer measures: it times windows of steps with the count it holds, now and then
tries the other candidates for a moment, keeps the fastest, and tries again at once when the
speed it holds drops or jumps (the load changed). Time is counted in measured step seconds
only, so pauses, sampling and checkpoints between steps do not bias it.

Trying fewer threads only pays when something else wants the CPU, and that is visible directly:
the kernel counts how long each of our threads waited in a run queue for a core
(``/proc/self/task/*/schedstat``). While all cores are held and our threads hardly waited, the
periodic re-check is skipped (it cost ~1.4 s at half speed each time at 64 px here).
"""
from __future__ import annotations

import os
from collections.abc import Callable

import torch

from ..config import TrainConfig
from .device import choose_threads, physical_cores

WINDOW_S = 3.0         # the held count's speed is measured over windows this long ...
TRY_S = 1.0            # ... another candidate is tried for this long ...
MIN_STEPS = 2          # ... and either way over at least this many steps
HOLD_S = 20.0          # step seconds a new winner is kept before the others are tried again
HOLD_MAX_S = 160.0     # the hold doubles each time the same candidate wins again, up to this
CHANGE = 0.30          # a window this much slower or faster than the held speed -> try the others now
QUIET_WAIT = 0.05      # run-queue wait per step second below this = nothing else wants our cores
# Measured (2 cores, 64 px step, 2 threads): quiet 0.006 s/s; one other process 40% busy 0.23 s/s;
# one other process fully busy 0.74 s/s.


def runqueue_wait_s() -> float | None:
    """Seconds this process's threads have waited for a CPU so far (Linux schedstat); None elsewhere."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    total, seen = 0, False
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])  # ns waiting on a run queue
            seen = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended, or no schedstat in this kernel
    return total / 1e9 if seen else None


def candidate_threads(cores: int) -> list[int]:
    """Thread counts worth trying: all cores, one fewer, half (for 2 cores: 1 and 2)."""
    return sorted({max(1, cores // 2), max(1, cores - 1), max(1, cores)})


class ThreadTuner:
    """Chooses the intra-op thread count from measured step times; call ``record`` after each step.

    It *holds* a count, measuring its speed every ``WINDOW_S``; after the first window, after
    ``hold_s`` seconds, or when a window's speed differs from the held speed by more than
    ``CHANGE``, it *tries* each other candidate for ``TRY_S`` and keeps the fastest. Costs: a
    try of a slower count loses at most ``TRY_S`` x (1 - its relative speed) per hold, and the
    hold grows to ``HOLD_MAX_S`` while the winner stays the same (under 1% on a steady machine).
    A hold of all cores whose last window saw almost no run-queue wait (``waited``) is renewed
    without a try: fewer threads cannot be faster on a machine nothing else is using.
    """

    def __init__(self, candidates: list[int], start: int | None = None,
                 setter: Callable[[int], None] = torch.set_num_threads,
                 waited: Callable[[], float | None] = runqueue_wait_s):
        if not candidates:
            raise ValueError("ThreadTuner needs at least one candidate")
        self.candidates = sorted(set(candidates))
        self.setter = setter
        self.current = start if start in self.candidates else self.candidates[-1]
        self.rates: dict[int, float] = {}  # steps/s: the held count's latest window, the others' latest try
        self.switches = 0                  # thread-count changes so far
        self.probes = 0                    # completed rounds of tries
        self.skipped = 0                   # re-checks skipped because nothing else wanted the CPU
        self.waited = waited
        self._wait0 = waited()             # run-queue wait when the current window began
        self.hold_s = HOLD_S
        self._held = self.current          # the count being held (trials switch away from it briefly)
        self._ref: float | None = None     # the held count's speed when it won
        self._queue: list[int] = []        # candidates still to try in this round
        self._held_s = 0.0
        self._win_s, self._win_n = 0.0, 0
        self._skip = True                  # the very first step pays for allocation and kernel setup
        self.setter(self.current)

    @property
    def adaptive(self) -> bool:
        return len(self.candidates) > 1

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    @property
    def held(self) -> int:
        """The count it settled on (``current`` differs only while another candidate is tried)."""
        return self._held

    def apply(self) -> None:
        """Set the current count on the calling thread (thread settings are per thread)."""
        self.setter(self.current)

    def record(self, seconds: float) -> None:
        """One step just took ``seconds`` with ``self.current`` threads."""
        if not self.adaptive:
            return
        if self._skip:
            self._skip = False
            return
        self._win_s += seconds
        self._win_n += 1
        if self._win_s < (TRY_S if self._queue else WINDOW_S) or self._win_n < MIN_STEPS:
            return
        rate, span = self._win_n / self._win_s, self._win_s
        self._win_s, self._win_n = 0.0, 0
        wait = self._wait_share(span)
        self.rates[self.current] = rate
        if self._queue:  # a try finished
            self._queue.pop(0)
            if self._queue:
                self._switch(self._queue[0])
            else:
                self._decide()
            return
        self._held_s += span
        if self._ref is None:  # the first window: see at once whether another count does better
            self._try_others()
        elif abs(rate - self._ref) > CHANGE * self._ref:
            self.hold_s = HOLD_S  # the load changed: after this round, check again soon
            self._try_others()
        elif self._held_s >= self.hold_s:
            if self._held == self.candidates[-1] and wait is not None and wait < QUIET_WAIT:
                self.skipped += 1  # all cores held and nobody waiting for them: renew the hold
                self._held_s = 0.0
                self.hold_s = min(HOLD_MAX_S, self.hold_s * 2)
            else:
                self._try_others()

    def summary(self) -> dict:
        return {"threads": self.current, "candidates": self.candidates, "switches": self.switches,
                "probes": self.probes, "skipped": self.skipped,
                "steps_per_s": {k: round(v, 3) for k, v in sorted(self.rates.items())}}

    def _wait_share(self, span: float) -> float | None:
        """Run-queue wait per step second over the window just ended (None: not measurable here)."""
        now = self.waited()
        before, self._wait0 = self._wait0, now
        if now is None or before is None or span <= 0:
            return None
        return (now - before) / span

    # ------------------------------------------------------------------ phases
    def _switch(self, n: int) -> None:
        if n != self.current:
            self.switches += 1
            self.current = n
            self.setter(n)

    def _try_others(self) -> None:
        self._queue = [c for c in self.candidates if c != self._held]
        self._switch(self._queue[0])

    def _decide(self) -> None:
        self.probes += 1
        best = max(self.candidates, key=lambda c: self.rates.get(c, 0.0))
        # A winner that keeps winning earns a longer hold (less time spent on the losers).
        self.hold_s = min(HOLD_MAX_S, self.hold_s * 2) if best == self._held and self._ref is not None else HOLD_S
        self._held = best
        self._ref = self.rates[best]
        self._held_s = 0.0
        self._switch(best)


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
