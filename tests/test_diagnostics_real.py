"""Diagnostics on real (tiny) training runs: each broken configuration raises the right finding
within a bounded number of steps, a healthy run raises no warning or critical finding, and a
resumed run does not announce an active finding again. The scenarios live in
benchmarks/diagnostics_scenarios.py, which also runs longer ones (see docs/diagnostics.md)."""
from __future__ import annotations

import pytest

from benchmarks import diagnostics_scenarios as scenarios
from core.runs import load_run
from core.train import create_run, resume_run, run_training

QUICK = [s for s in scenarios.SCENARIOS if s.quick]


def _findings(run_dir):
    return [e for e in load_run(run_dir).events() if e.get("type") == "finding"]


@pytest.mark.parametrize("sc", QUICK, ids=lambda s: s.name)
def test_scenario(sc, tmp_path):
    r = scenarios.run_scenario(sc, tmp_path)
    if sc.expect is None:
        assert r["state"] == "finished"
        assert r["ok"], f"false alarm in a healthy run: {r['findings']}"
        return
    assert r["detected"] is not None, f"{sc.expect} not raised; findings: {r['findings']}"
    assert r["detected"] <= sc.bound, f"{sc.expect} raised at step {r['detected']} > bound {sc.bound}"
    first = r["first"]
    assert first["severity"] in ("warning", "critical") and first["explanation"] and first["suggestion"]
    assert first["fix"], "a detected problem must offer a fix to fork with"
    if sc.expect == "divergence":
        assert r["state"] == "diverged"
    # announced once, not at every log step
    assert sum(1 for s, k, _, st in r["findings"] if k == sc.expect and st == "started") == 1


def test_resumed_run_does_not_reannounce(tmp_path):
    sc = scenarios.BY_NAME["d-lr-50x"]
    t = create_run(sc.config(tmp_path), tmp_path / "runs")
    assert run_training(t, should_stop=lambda: t.step_count >= 220) == "stopped"  # d_dominance started at ~180
    assert [(e["kind"], e["status"]) for e in _findings(t.store.path)] == [("d_dominance", "started")]
    t2 = resume_run(t.store.path, steps=280)
    assert t2.extra_state["diagnostics"]["active"]["d_dominance"]["since"] <= 220
    assert run_training(t2) == "finished" and t2.step_count == 280
    kinds = [(e["kind"], e["status"]) for e in _findings(t.store.path)]
    assert kinds.count(("d_dominance", "started")) == 1, kinds
