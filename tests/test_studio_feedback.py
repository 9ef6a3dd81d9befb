"""#20 items 11 and 13: Evaluate's std, the Fork popover's names and notes, the tab title, keyboard shortcuts."""
from __future__ import annotations

import json
from pathlib import Path

from test_studio_app import app, assert_ok, cache_dir, make_run, runs  # noqa: F401 - fixtures


def test_missing_std_reads_as_a_dash_not_none():
    import math

    from studio.pages.runs import std_text

    assert std_text(None) == "—" and std_text(math.nan) == "—"
    assert std_text(0.0123).startswith("± 0.0123")


def test_tab_title_shows_progress_first():
    from studio.sidebar import tab_title

    assert tab_title("00001-dcgan", "running", 250, 1000) == "25% · 00001-dcgan — GAN Studio"
    assert tab_title("00001-dcgan", "paused", 1000, 1000).startswith("Paused 100% ·")


def test_evaluations_table_has_no_none_std(runs):  # noqa: F811
    p = make_run(runs, "00000-scored")
    (p / "checkpoints" / "step_100.pt").write_bytes(b"x")
    with open(p / "evaluations.jsonl", "w") as f:
        f.write(json.dumps({"time": 1.0, "step": 100, "metric": "swd", "value": 30.0, "std": None, "n": 64}) + "\n")
    at = app("pages/runs.py")
    assert_ok(at)
    df = next(d.value for d in at.dataframe if "feature network" in d.value.columns)
    assert list(df["± std"]) == ["—"]


def test_fork_uses_friendly_names_a_diffaug_choice_and_says_what_counts(runs, monkeypatch):  # noqa: F811
    from core.jobs import JobManager

    p = make_run(runs, "00000-src")
    calls = []
    monkeypatch.setattr(JobManager, "fork", lambda self, run_dir, changes: calls.append(dict(changes)) or Path(run_dir))
    at = app("pages/runs.py")
    assert_ok(at)
    key = f"fork_{p.name}"
    labels = [w.label for w in list(at.number_input) + list(at.toggle) if w.key and w.key.startswith(key)]
    assert "Total steps" in labels and "lr_d" not in labels, labels
    captions = " ".join(c.value for c in at.caption)
    assert "Total steps** counts from the parent's step 0" in captions and "starts fresh" in captions
    aug = at.multiselect(key=f"{key}_diffaug")
    assert list(aug.options) == ["translation", "cutout", "color"]
    aug.set_value(["cutout", "translation"]).run()
    at.button(key=f"{key}_go").click().run()
    assert_ok(at)
    assert calls and calls[0]["diffaug"] == "translation,cutout"


def test_fork_with_a_fix_marks_the_fields_it_changed():
    from studio.actions import fork_label

    assert "suggested" in fork_label("lr_d", suggested=True) and "suggested" not in fork_label("lr_d")
    assert fork_label("lr_d") != "lr_d"


def test_monitor_has_keyboard_shortcuts_that_skip_inputs(runs):  # noqa: F811
    from studio import shortcuts

    make_run(runs, "00000-done")
    at = app("pages/monitor.py")
    assert_ok(at)
    assert any("space" in c.value and "sample history" in c.value for c in at.caption)
    js = shortcuts._KEYS_JS
    assert "'input', 'textarea'" in js and "ctl_pause" in js and "ArrowLeft" in js
