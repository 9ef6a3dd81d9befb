"""core.run_logs (incremental metrics/events readers, downsampling) and core.estimate."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from core.run_logs import (
    EventLog,
    HistoryCache,
    MetricsHistory,
    checkpoint_problems,
    downsample,
    metrics_problems,
    smooth,
)


def write(path: Path, rows, mode="a") -> None:
    with open(path, mode) as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_incremental_read_only_parses_new_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    h = MetricsHistory(p)
    assert h.refresh() == 0 and len(h) == 0  # a missing file is empty, not an error
    write(p, [{"step": i, "loss/d": float(i)} for i in range(10)])
    assert h.refresh() == 10
    offset = h._offset
    assert h.refresh() == 0 and h._offset == offset
    write(p, [{"step": 10, "loss/d": 10.0, "loss/g": 3.0}])  # a new column appears
    assert h.refresh() == 1
    x, y = h.series("loss/d")
    assert x.tolist() == list(range(11)) and y[-1] == 10.0
    x, y = h.series("loss/g")
    assert x.tolist() == [10] and y.tolist() == [3.0]
    assert h.last("loss/g") == 3.0 and h.last("nope") is None
    assert h.columns() == ["loss/d", "loss/g"]


def test_torn_last_line_is_read_once_complete(tmp_path):
    p = tmp_path / "metrics.jsonl"
    write(p, [{"step": 0, "loss/d": 1.0}])
    with open(p, "a") as f:
        f.write('{"step": 1, "loss/d": 0.')
    h = MetricsHistory(p)
    assert h.refresh() == 1 and h.torn_tail
    assert metrics_problems(h, "run", active=False) and not metrics_problems(h, "run", active=True)
    with open(p, "a") as f:
        f.write('5}\n')
    assert h.refresh() == 1
    assert h.series("loss/d")[1].tolist() == [1.0, 0.5]
    assert not h.torn_tail


def test_damaged_middle_line_is_skipped_and_counted(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 0, "loss/d": 1}\nGARBAGE\n{"step": 2, "loss/d": null, "nonfinite": ["loss/d"]}\n'
                 '{"step": 3, "loss/d": 2}\n')
    h = MetricsHistory(p)
    assert h.refresh() == 3
    assert h.damaged_lines == 1
    x, y = h.series("loss/d")  # null (non-finite) values are left out of the drawn series
    assert x.tolist() == [0, 3] and y.tolist() == [1.0, 2.0]
    assert "damaged" in metrics_problems(h, "run")[0]


def test_replaced_or_truncated_file_is_reread(tmp_path):
    p = tmp_path / "metrics.jsonl"
    write(p, [{"step": i, "loss/d": 1.0} for i in range(20)])
    h = MetricsHistory(p)
    h.refresh()
    tmp = tmp_path / "new.jsonl"
    write(tmp, [{"step": i, "loss/d": 2.0} for i in range(5)], mode="w")
    os.replace(tmp, p)  # what a resume does (truncate_metrics_after rewrites atomically)
    h.refresh()
    assert len(h) == 5 and h.series("loss/d")[1].tolist() == [2.0] * 5


def test_event_log_keeps_latest_finding_per_kind_and_rollbacks(tmp_path):
    p = tmp_path / "events.jsonl"
    write(p, [{"type": "state", "state": "running", "time": 1},
              {"type": "rollback", "message": "rolled back to step 60", "time": 1.5},
              {"type": "finding", "kind": "collapse", "severity": "warning", "status": "started", "time": 2},
              {"type": "finding", "kind": "d_wins", "severity": "critical", "status": "started", "time": 3},
              {"type": "finding", "kind": "collapse", "severity": "warning", "status": "cleared", "time": 4},
              {"type": "error", "message": "boom", "time": 5}])
    ev = EventLog(p, max_events=3)
    ev.refresh()
    assert [f["kind"] for f in ev.active_findings()] == ["d_wins"]
    assert {f["kind"] for f in ev.findings()} == {"d_wins", "collapse"}
    assert ev.last_error()["message"] == "boom"
    assert len(ev.events()) == 3
    assert [e["message"] for e in ev.rollbacks()] == ["rolled back to step 60"]  # kept past the cap


def test_history_cache_shares_readers(tmp_path):
    run = tmp_path / "00000-x"
    run.mkdir()
    write(run / "metrics.jsonl", [{"step": 1, "loss/d": 1.0}])
    c = HistoryCache()
    a = c.metrics(run)
    assert c.metrics(run) is a and len(a) == 1
    write(run / "metrics.jsonl", [{"step": 2, "loss/d": 1.0}])
    assert len(c.metrics(run)) == 2  # every get refreshes
    c.forget(run)
    assert c.metrics(run) is not a


def test_downsample_keeps_extremes_and_is_fast_on_a_million_rows():
    n = 1_000_000
    rng = np.random.default_rng(0)
    x = np.arange(n, dtype=np.float64)
    y = rng.normal(size=n).cumsum()
    y[123_457] = 1e6   # a spike
    y[765_431] = -1e6  # and a dip
    t = time.perf_counter()
    xs, ys = downsample(x, y, 2000)
    dt = time.perf_counter() - t
    assert len(xs) <= 2000
    assert ys.max() == 1e6 and ys.min() == -1e6
    assert 123_457 in xs and 765_431 in xs
    assert xs[0] == 0 and xs[-1] == n - 1
    assert np.all(np.diff(xs) > 0)
    assert dt < 0.5, dt


def test_downsample_small_series_and_nans_untouched():
    x = np.arange(10.0)
    y = np.where(x == 3, np.nan, x)
    xs, ys = downsample(x, y, 2000)
    assert xs.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_reading_a_million_rows_then_one_more(tmp_path):
    p = tmp_path / "metrics.jsonl"
    line = '{"step":%d,"loss/d":0.5,"loss/g":1.5,"d/real":0.6,"d/fake":0.4}\n'
    n = 200_000  # 10^6 works too (about 5x longer); keep the suite fast on a small CPU
    p.write_text("".join(line % i for i in range(n)))
    h = MetricsHistory(p)
    t = time.perf_counter()
    h.refresh()
    first = time.perf_counter() - t
    before = len(h)  # a strided first read keeps about MAX_ROWS_PER_READ rows
    with open(p, "a") as f:
        f.write(line % n)
    t = time.perf_counter()
    assert h.refresh() == 1
    assert time.perf_counter() - t < 0.05
    assert len(h) == before + 1 and h.column("step")[-1] == n and first < 10


def test_smooth_is_a_trailing_mean():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert smooth(y, 2).tolist() == [1.0, 1.5, 2.5, 3.5]


def test_checkpoint_problems_name_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    run = tmp_path / "00000-r"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"a": 1}, run / "checkpoints" / "step_0000010.pt")
    (run / "checkpoints" / "step_0000020.pt").write_bytes(b"\0" * 10)
    probs = checkpoint_problems(run)
    assert len(probs) == 1 and "step_0000020.pt" in probs[0]


def test_estimate_tiny_config():
    pytest.importorskip("core.models")
    from core.config import TrainConfig
    from core.estimate import estimate
    from core.units import human_bytes, human_duration

    cfg = TrainConfig(resolution=16, batch_size=8, g_width=8, d_width=8, latent_dim=16, device="cpu")
    e = estimate(cfg, channels=3)
    assert e.params_g > 0 and e.params_d > 0 and e.flops_per_step > 0
    assert e.memory_bytes > e.weights_bytes > 0
    assert e.sec_per_step and e.sec_per_step > 0 and e.sec_source == "measured"
    e2 = estimate(cfg.replace(batch_size=16, n_critic=2), channels=3, measure=False)
    assert 2.2 * e.flops_per_step < e2.flops_per_step < 4.5 * e.flops_per_step  # 2x batch, 2 D steps
    assert e2.sec_source.startswith("rough")
    assert human_bytes(2048) == "2.0 KB" and human_duration(90) == "1 min 30 s"


def test_huge_history_first_read_uses_a_stride_but_keeps_the_tail(tmp_path, monkeypatch):
    import json as _json

    import core.run_logs as hist
    monkeypatch.setattr(hist, "MAX_ROWS_PER_READ", 500)
    monkeypatch.setattr(hist, "TAIL_ROWS", 100)
    p = tmp_path / "metrics.jsonl"
    p.write_text("".join(_json.dumps({"step": i, "loss/d": float(i)}) + "\n" for i in range(1, 5001)))
    h = hist.MetricsHistory(p)
    h.refresh()
    assert h.stride > 1 and len(h) <= 500
    steps = h.column("step")
    assert list(steps[-100:]) == list(range(4901, 5001))  # the newest rows are all there
    assert steps[0] == 1
    with open(p, "a") as f:
        f.write(_json.dumps({"step": 5001, "loss/d": 1.0}) + "\n")
    assert h.refresh() == 1 and h.column("step")[-1] == 5001  # later refreshes read every line


def test_quality_chart_shares_the_training_step_axis(tmp_path):
    """One evaluation at step 1000 of a run logged to step 1020: the axis spans 0..1020 in whole
    steps (plus a small margin), not plotly's automatic 999..1000.5 around the single point."""
    from studio import charts
    p = tmp_path / "metrics.jsonl"
    write(p, [{"step": s, "loss/d": 1.0} for s in range(0, 1021, 20)] + [{"step": 1000, "metric/swd": 288.0}])
    h = MetricsHistory(p)
    h.refresh()
    cols = charts.quality_columns(h)
    fig = charts.quality_figure(h, cols, charts.best_point(h, [], cols[0]))
    lo, hi = fig.layout.xaxis.range
    # A 3% margin each side, so the 0 tick is not cut at the plot's edge (#20 item 9).
    assert -0.05 * hi <= lo <= 0 and 1020 <= hi <= 1100 and fig.layout.xaxis.tickformat == ",d"
    assert fig.data[-1].x.tolist() == [1000.0]  # the best-step star
