"""The adaptive CPU thread count: picks the faster count, follows load changes, stays put otherwise."""
from __future__ import annotations

import pytest

from core.train import run_training
from core.train import threads as T
from core.train.threads import ThreadTuner, candidate_threads, make_thread_tuner


class FakeCPU:
    """Step times per thread count, switchable to simulate another process getting busy.

    Busy, our threads beyond the first wait for a core half of the time (the run-queue wait the
    tuner reads through ``waited``); quiet, they never wait."""

    def __init__(self, quiet: dict[int, float], busy: dict[int, float]):
        self.times = {"quiet": quiet, "busy": busy}
        self.mode = "quiet"
        self.set_calls: list[int] = []
        self.wait_s = 0.0

    def setter(self, n: int) -> None:
        self.set_calls.append(n)

    def waited(self) -> float:
        return self.wait_s

    def tuner(self, start: int, candidates=(1, 2)) -> ThreadTuner:
        return ThreadTuner(list(candidates), start=start, setter=self.setter, waited=self.waited)

    def run(self, tuner: ThreadTuner, seconds: float) -> dict[int, float]:
        """Step for ``seconds`` of step time; return the step time spent at each count."""
        spent: dict[int, float] = {}
        t = 0.0
        while t < seconds:
            dt = self.times[self.mode][tuner.current]
            spent[tuner.current] = spent.get(tuner.current, 0.0) + dt
            if self.mode == "busy":
                self.wait_s += 0.5 * dt * (tuner.current - 1)
            tuner.record(dt)
            t += dt
        return spent


def test_candidates():
    assert candidate_threads(1) == [1]
    assert candidate_threads(2) == [1, 2]
    assert candidate_threads(8) == [4, 7, 8]


def test_picks_the_faster_count_and_mostly_stays_there():
    cpu = FakeCPU(quiet={1: 0.16, 2: 0.10}, busy={1: 0.18, 2: 0.60})
    tu = cpu.tuner(start=1)
    spent = cpu.run(tu, 600)
    assert tu.held == 2
    # Probing the slower count costs a small share once the winner is stable (holds grow to 160 s).
    assert spent.get(1, 0) / 600 < 0.05
    assert tu.hold_s == T.HOLD_MAX_S
    assert tu.rates[2] == pytest.approx(10.0) and tu.rates[1] == pytest.approx(6.25)


def test_load_appearing_moves_to_fewer_threads_within_seconds():
    cpu = FakeCPU(quiet={1: 0.16, 2: 0.10}, busy={1: 0.18, 2: 0.60})
    tu = cpu.tuner(start=2)
    cpu.run(tu, 300)
    assert tu.held == 2
    cpu.mode = "busy"
    spent = cpu.run(tu, 10)  # one window (3 s) sees the drop, trying 1 thread takes ~1 s
    assert tu.held == 1
    spent = cpu.run(tu, 120)
    assert spent.get(2, 0) / 120 < 0.1, spent  # re-checks of 2 threads under load stay short
    # ... and when the load goes away, the next periodic probe brings all cores back.
    cpu.mode = "quiet"
    cpu.run(tu, T.HOLD_MAX_S + 10)
    assert tu.held == 2  # (``current`` may be 1 for a moment if the run ends during a re-check)


def test_quiet_machine_skips_rechecks_of_fewer_threads_but_busy_one_keeps_them():
    cpu = FakeCPU(quiet={1: 0.16, 2: 0.10}, busy={1: 0.18, 2: 0.12})  # busy, but 2 threads still win
    tu = cpu.tuner(start=2)
    spent = cpu.run(tu, 600)
    # Only the first window's try is made (it would find a model that prefers fewer threads).
    assert tu.held == 2 and tu.probes == 1 and tu.skipped >= 3, tu.summary()
    assert spent.get(1, 0) < 2 * T.TRY_S
    cpu.mode = "busy"  # 20% slower: under the CHANGE threshold, so only the wait tells
    probes = tu.probes
    cpu.run(tu, 2 * T.HOLD_MAX_S + 10)
    assert tu.held == 2 and tu.probes > probes  # others want the CPU: the re-checks are made
    # Not measurable (no schedstat): re-checks on schedule, as before.
    blind = ThreadTuner([1, 2], start=2, setter=cpu.setter, waited=lambda: None)
    cpu.mode = "quiet"
    cpu.run(blind, 600)
    assert blind.skipped == 0 and blind.probes >= 4


def test_runqueue_wait_is_read_for_this_process():
    import os
    if not os.path.isfile(f"/proc/self/task/{os.getpid()}/schedstat"):
        pytest.skip("no per-thread schedstat on this system (the tuner then re-checks on schedule)")
    first = T.runqueue_wait_s()
    sum(i * i for i in range(200_000))  # some CPU time, so the counters move on
    second = T.runqueue_wait_s()
    assert isinstance(first, float) and 0.0 <= first <= second


def test_first_step_is_not_counted_and_a_try_is_short():
    seen = []
    tu = ThreadTuner([1, 2], start=2, setter=seen.append, waited=lambda: None)
    tu.record(100.0)  # first step ever: allocation and kernel set-up, ignored
    for _ in range(8):  # one window: 8 x 0.4 s >= WINDOW_S
        tu.record(0.4)
    assert tu.current == 1 and tu.probing  # after the first window, the other count is tried
    tu.record(0.5)
    tu.record(0.5)  # TRY_S and MIN_STEPS reached
    assert tu.rates == {2: pytest.approx(2.5), 1: pytest.approx(2.0)}
    assert tu.current == 2 and not tu.probing and seen == [2, 1, 2]


def test_single_candidate_is_fixed():
    seen = []
    tu = ThreadTuner([1], setter=seen.append)
    for _ in range(100):
        tu.record(0.1)
    assert not tu.adaptive and tu.current == 1 and seen == [1] and tu.switches == 0


def test_trainer_gets_a_tuner_only_for_auto_threads_on_a_multicore_cpu(tiny_cfg, monkeypatch):
    import torch
    monkeypatch.setattr(T, "physical_cores", lambda: 4)
    cpu = torch.device("cpu")
    assert make_thread_tuner(tiny_cfg.replace(threads=1), cpu, shared_cpu=False) is None
    assert make_thread_tuner(tiny_cfg.replace(threads=0), cpu, shared_cpu=False, world_size=2) is None
    tu = make_thread_tuner(tiny_cfg.replace(threads=0), cpu, shared_cpu=True)
    assert tu is not None and tu.candidates == [2, 3, 4] and tu.current == 3  # studio: one core left free
    monkeypatch.setattr(T, "physical_cores", lambda: 1)
    assert make_thread_tuner(tiny_cfg.replace(threads=0), cpu, shared_cpu=False) is None


def test_training_with_auto_threads_logs_the_count(tiny_cfg, tmp_path, monkeypatch):
    import json

    import torch

    from core.train.setup import create_run

    monkeypatch.setattr(T, "physical_cores", lambda: 2)
    before = torch.get_num_threads()
    try:
        tr = create_run(tiny_cfg.replace(threads=0), tmp_path)
        assert tr.thread_tuner is not None
        assert run_training(tr) == "finished"
        lines = [json.loads(x) for x in (tr.store.path / "metrics.jsonl").read_text().splitlines() if x.strip()]
        assert lines and all(r["perf/threads"] in (1, 2) for r in lines)
        st = json.loads((tr.store.path / "status.json").read_text())
        assert st["threads"] in (1, 2)
    finally:
        torch.set_num_threads(before)


def test_cpu_ddp_ranks_split_the_cores(tiny_cfg, monkeypatch):
    from core.train.device import choose_threads
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert choose_threads(tiny_cfg.replace(threads=0), shared_cpu=False, cores=8, world_size=2) == 4
    assert choose_threads(tiny_cfg.replace(threads=0), shared_cpu=False, cores=2, world_size=2) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # one rank per machine: all its cores
    assert choose_threads(tiny_cfg.replace(threads=0), shared_cpu=False, cores=8, world_size=4) == 8
    assert choose_threads(tiny_cfg.replace(threads=3), shared_cpu=False, cores=8, world_size=2) == 3
