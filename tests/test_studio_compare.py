"""Compare on the Runs page: quality metric by default, friendly names, remembered choice, config diff, grids."""
from __future__ import annotations

import json
import time

import numpy as np
from test_studio_app import app, assert_ok, cache_dir, make_run, runs  # noqa: F401 - the runs-root fixtures

from studio.compare import csv_bytes, metric_label, metric_options, smoothing_window


def _quality_run(root, name, loss="bce", evals=(0.30, 0.20, 0.25)):
    p = make_run(root, name)
    cfg = json.loads((p / "config.json").read_text())
    cfg["config"]["loss"] = loss
    (p / "config.json").write_text(json.dumps(cfg))
    t0 = time.time() - 600
    with open(p / "metrics.jsonl", "a") as f:
        for i, v in enumerate(evals):
            f.write(json.dumps({"step": 100 + 50 * i, "time": t0 + 60 * i, "quality/score": v,
                                "metric/swd": v, "metric/swd_16px": v / 2, "diag/x": 1.0, "epoch": 1}) + "\n")
    with open(p / "events.jsonl", "a") as f:
        f.write(json.dumps({"type": "metric", "metric": "swd", "step": 150, "value": min(evals), "best": True,
                            "time": time.time()}) + "\n")
    return p


def _arr(v) -> list[float]:
    """A trace's x or y: a list, or plotly's base64 typed array."""
    if isinstance(v, dict):
        import base64
        return list(np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])))
    return list(v)


def _chart(at) -> dict:
    return json.loads(at.get("plotly_chart")[-1].proto.spec)


def _page():
    return app("pages/runs.py")


def test_labels_and_options_mark_the_headline_and_hide_internal_keys():
    cols = ["loss/d", "loss/g", "perf/img_per_s", "diag/d_gap", "epoch", "metric/swd", "quality/score",
            "metric/swd_std", "metric/swd_32px"]
    opts = metric_options(cols, internal=False)
    assert opts[0] == "quality/score" and "perf/img_per_s" not in opts and "epoch" not in opts
    assert "diag/d_gap" not in opts and "metric/swd_std" not in opts
    assert set(metric_options(cols, internal=True)) == set(cols)
    assert metric_label("quality/score") == "★ Quality (SWD, lower is better)"
    assert metric_label("metric/swd_32px") == "SWD at 32px (lower is better)"


def test_few_points_are_never_smoothed():
    assert smoothing_window(3) == 0 and smoothing_window(19) == 0 and smoothing_window(400) == 10


def test_csv_holds_every_compared_point():
    s = np.array([0.0, 5.0])
    text = csv_bytes([("a", s, s, np.array([1.0, 2.0])), ("b", s, s, np.array([3.0, 4.0]))], "loss/d").decode()
    assert text.splitlines() == ["run,step,x,loss/d", "a,0,0.0,1.0", "a,5,5.0,2.0", "b,0,0.0,3.0", "b,5,5.0,4.0"]


def test_compare_defaults_to_quality_shows_config_diff_and_best_grids(runs):  # noqa: F811
    _quality_run(runs, "00001-bce")
    _quality_run(runs, "00002-hinge", loss="hinge")
    at = _page()
    assert_ok(at)
    sel = at.selectbox(key="cmp_metric")
    assert sel.value == "quality/score"
    assert "perf/img_per_s" not in sel.options and "epoch" not in sel.options
    chart = _chart(at)
    ys = [_arr(t["y"]) for t in chart["data"]]
    assert any(np.allclose(y, [0.30, 0.20, 0.25]) for y in ys), ys  # 3 points: drawn as they are
    frames = [df.value for df in at.dataframe]
    diff = [f for f in frames if "field" in f.columns]
    assert diff and "Loss" in list(diff[0]["field"]) and "hinge" in list(diff[0]["00002-hinge"])
    caps = " ".join(c.value for c in at.caption)
    assert "step 150" in caps and "best quality 0.2" in caps
    assert at.get("download_button")


def test_compare_remembers_the_metric_across_a_reload(runs):  # noqa: F811
    _quality_run(runs, "00001-bce")
    at = _page()
    at.selectbox(key="cmp_metric").select("loss/d").run()
    at.toggle(key="cmp_logy").set_value(True).run()
    assert_ok(at)
    again = _page()  # a new session: what a browser reload starts
    assert again.selectbox(key="cmp_metric").value == "loss/d" and again.toggle(key="cmp_logy").value
    chart = _chart(again)
    assert chart["layout"]["yaxis"]["type"] == "log"


def test_wall_clock_axis_is_minutes_since_start(runs):  # noqa: F811
    _quality_run(runs, "00001-bce")
    at = _page()
    at.radio(key="cmp_x").set_value("minutes").run()
    assert_ok(at)
    chart = _chart(at)
    xs = _arr(chart["data"][0]["x"])
    assert xs[0] == 0 or xs[0] < xs[-1]  # minutes, not steps 100..200
    assert max(xs) < 100


def test_compare_with_an_empty_runs_folder(runs):  # noqa: F811
    at = _page()
    assert_ok(at)


def test_swd_gets_the_datasets_real_vs_real_baseline(runs):  # noqa: F811
    from core.metrics.swd_baseline import cached_baseline

    p = _quality_run(runs, "00001-bce")
    cfg = json.loads((p / "config.json").read_text())["config"]
    key = (cfg["data"], cfg["resolution"], cfg["channels"], cfg["eval_samples"], cfg["seed"])
    at = _page()
    assert not _chart(at)["layout"].get("shapes")
    at.button(key="cmp_baseline").click().run()
    assert_ok(at)
    value = cached_baseline(*key)  # computed once, kept in the user cache
    assert value is not None and value > 0
    layout = _chart(at)["layout"]
    assert layout["shapes"][0]["y0"] == value and "real vs real" in layout["annotations"][0]["text"]
    again = _page()  # from the cache: no button needed
    assert _chart(again)["layout"]["shapes"][0]["y0"] == value
