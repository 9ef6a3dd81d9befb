"""AppTest of the Monitor's sample history (#20 items 2, 9, 10, 11): the slider stays where it is put,
"Latest" follows again, grids are large and downloadable, a paused run reads as paused."""
from __future__ import annotations

import io
import json

from test_studio_app import app, assert_ok, cache_dir, make_run, png, runs  # noqa: F401 - fixtures

MONITOR = "pages/monitor.py"


def _heading(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("##### Generated"))


def test_scrubbing_back_stays_on_the_chosen_step(runs):  # noqa: F811
    make_run(runs, "00000-done")
    at = app(MONITOR)
    assert_ok(at)
    slider = at.select_slider(key="scrub_00000-done")
    assert slider.value == 100 and "step 100" in _heading(at)
    slider.set_value(50).run()
    assert_ok(at)
    assert "step 50" in _heading(at)
    at.run()  # the next refresh (a live fragment or any rerun) must not jump back to the latest grid
    assert "step 50" in _heading(at)
    assert at.select_slider(key="scrub_00000-done").value == 50


def test_latest_button_and_the_end_of_the_slider_follow_new_grids(runs):  # noqa: F811
    p = make_run(runs, "00000-live")
    at = app(MONITOR)
    at.select_slider(key="scrub_00000-live").set_value(0).run()
    png(p / "samples" / "step_0000150.png")
    at.run()
    assert "step 0" in _heading(at).replace(",", "")  # paused on the chosen grid while new ones arrive
    next(b for b in at.button if b.label == "Latest").click().run()
    assert "step 150" in _heading(at)
    png(p / "samples" / "step_0000200.png")
    at.run()
    assert "step 200" in _heading(at)  # following again
    at.select_slider(key="scrub_00000-live").set_value(50).run()
    at.select_slider(key="scrub_00000-live").set_value(200).run()  # back to the end: follow resumes
    png(p / "samples" / "step_0000250.png")
    at.run()
    assert "step 250" in _heading(at)


def _downloads(at) -> dict[str, object]:
    return {d.proto.label: d for d in at.get("download_button")}


def test_grid_downloads_large_view_and_untrained_label(runs):  # noqa: F811
    make_run(runs, "00000-done")
    at = app(MONITOR)
    assert {"Grid", "Timelapse"} <= set(_downloads(at))
    at.select_slider(key="scrub_00000-done").set_value(0).run()
    assert "untrained generator" in _heading(at)
    assert any("untrained generator" in c.value for c in at.caption)
    at.toggle(key="monitor_large").set_value(True).run()
    assert_ok(at)
    assert "step 0" in _heading(at)  # the large view keeps the chosen step


def test_large_grid_tiles_are_at_least_64_px(tmp_path):
    import torch
    from PIL import Image

    from core.imaging import grid_png
    from studio.samples_view import _large_png

    p = tmp_path / "step_0000100.png"
    p.write_bytes(grid_png(torch.zeros(64, 3, 32, 32), nrow=8))
    img = Image.open(io.BytesIO(_large_png.__wrapped__(str(p), 0.0)))
    assert img.width >= 8 * 64


def test_pause_shows_pausing_at_once_and_a_paused_run_reads_as_paused(runs):  # noqa: F811
    p = make_run(runs, "00000-cli", state="running")
    at = app(MONITOR)
    at.button(key="ctl_pause").click().run()
    assert any("Pausing" in c.value for c in at.caption), [c.value for c in at.caption]
    status = json.loads((p / "status.json").read_text())
    (p / "status.json").write_text(json.dumps({**status, "state": "paused"}))
    at.run()
    sel = at.selectbox(key="monitor_run")
    assert "paused" in sel.format_func(sel.value).lower()
    assert not any("Pausing" in c.value for c in at.caption)
    assert at.button(key="ctl_resume")


def test_charts_hide_a_constant_learning_rate_and_internal_keys(runs):  # noqa: F811
    p = make_run(runs, "00000-done")
    with open(p / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 100, "loss/d": 0.8, "loss/g": 1.1, "lr/g": 2e-4, "lr/d": 2e-4,
                            "diag/copy_rate": 0.1, "diag/nn_novelty": 0.3, "pl/mean": 0.5}) + "\n")
    at = app(MONITOR)
    assert_ok(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert "Learning rates" not in titles
    assert any("Learning rate, constant" in c.value and "0.0002" in c.value for c in at.caption)
    names = [t.get("name", "") for s in specs for t in s["data"]]
    assert not [n for n in names if "diag/" in n], names
    other = next(s for s in specs if s["layout"]["title"]["text"] == "Other")
    assert [t["name"] for t in other["data"]] == ["path length (mean)"]


def test_chart_ticks_are_readable():
    import numpy as np

    from studio import charts

    vals, text = charts.log_ticks(np.array([0.03, 0.5, 40.0]))
    assert text == ["0.01", "0.1", "1", "10", "100"]
    vals, text = charts.log_ticks(np.array([0.31, 0.52, 0.9]))
    assert text == ["0.2", "0.5", "1"]
    assert len(vals) <= 6
    assert charts.pretty("diag/copy_rate") == "copy rate"


def test_sidebar_card_says_paused_for_a_paused_job(runs, monkeypatch):  # noqa: F811
    from types import SimpleNamespace

    from studio import state

    p = make_run(runs, "00000-job", state="paused")
    monkeypatch.setattr(state, "active_job", lambda: SimpleNamespace(run_dir=p, state="paused", nproc=1, proc=None))
    at = app()  # AppTest runs app.py's fragments (the sidebar card) only before a page switch
    assert_ok(at)
    side = [m.value for m in at.markdown]
    assert any(m.startswith("**Paused**") for m in side), side
    assert not any("Training now" in m for m in side)


def test_translation_runs_chart_d_without_the_noise_notation(tmp_path):
    """A pix2pix D scores (input, target) pairs: its chart was titled D(x) and D(G(z)) with a 'D(G(z)) — fake' legend."""
    import json

    from core.run_logs import MetricsHistory
    from studio import charts
    cols = ["loss/d", "loss/g", "d/real", "d/fake"]
    assert "D(x) and D(G(z))" in [t for t, _, _ in charts.chart_groups(cols, "bce")]
    groups = {t: (c, o) for t, c, o in charts.chart_groups(cols, "bce", "pix2pix")}
    assert "D(x) and D(G(z))" not in groups and groups["D on real and translated pairs"][0] == ["d/real", "d/fake"]
    f = tmp_path / "metrics.jsonl"
    f.write_text("".join(json.dumps({"step": s, "d/real": 0.8, "d/fake": 0.2}) + "\n" for s in range(0, 100, 25)))
    h = MetricsHistory(f)
    h.refresh()
    fig = charts.figure(h, "D", ["d/real", "d/fake"], groups["D on real and translated pairs"][1])
    assert [tr.name for tr in fig.data] == ["D(input, target) — real", "D(input, G(input)) — translated"]


def test_event_log_wraps_long_messages_on_request(runs):  # noqa: F811
    """st.dataframe cells never wrap: a long event message was cut on a laptop screen with no way to read it."""
    p = make_run(runs, "00000-long")
    long = "D is winning: " + "lower lr_d or raise the augmentation strength " * 6 + "END"
    with open(p / "events.jsonl", "a") as f:
        f.write(json.dumps({"type": "warning", "step": 90, "time": 1.0, "message": long}) + "\n")
    at = app(MONITOR)
    assert_ok(at)
    assert not at.table  # one line per row in the scrollable table by default
    at.toggle(key="mon_events_wrap").set_value(True).run()
    assert_ok(at)
    assert len(at.table) == 1 and long in at.table[0].value.to_string(max_colwidth=None)
