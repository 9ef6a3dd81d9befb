"""One malformed run folder must never break a page or a command (#19, findings 3 and 12): every
reader of a run folder is total (bounded size, deep JSON, wrong types, NaN, image bombs), and the
Runs page renders each run card on its own, so the good runs still show and the bad one can be deleted."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from faultkit import huge_png_header
from test_studio_app import app, assert_ok, cache_dir, make_run, runs, texts  # noqa: F401 - fixtures

from core.fsutil import read_json, read_jsonl
from core.run_logs import EventLog, MetricsHistory
from core.runs import list_runs, load_run

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJ = '{"config": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}"
BAD_STATUS = '{"state": 5, "step": "abc", "total_steps": NaN, "updated": Infinity, "pid": "x", "host": [1]}'


def _hostile(root: Path) -> dict[str, Path]:
    """Good runs around hostile ones; returns {kind: folder}."""
    out = {"good": make_run(root, "00000-good")}
    p = out["deep-config"] = make_run(root, "00001-deepconfig")
    (p / "config.json").write_text(DEEP_OBJ)
    p = out["deep-status"] = make_run(root, "00002-deepstatus")
    (p / "status.json").write_text(DEEP)
    p = out["bad-status"] = make_run(root, "00003-badstatus")
    (p / "status.json").write_text(BAD_STATUS)
    p = out["bomb-png"] = make_run(root, "00004-bomb")
    for f in (p / "samples" / "step_0000100.png", p / "reals.png"):
        f.write_bytes(huge_png_header(30_000, 30_000))
    p = out["deep-logs"] = make_run(root, "00005-deeplogs")
    for name in ("metrics.jsonl", "events.jsonl", "evaluations.jsonl"):
        with open(p / name, "a") as f:
            f.write('{"x": ' + DEEP + "}\n" + '{"step": NaN, "type": 5, "message": ["m"]}\n')
    out["good2"] = make_run(root, "00006-good2")
    return out


def test_readers_are_total(tmp_path):
    folders = _hostile(tmp_path)
    for kind, p in folders.items():
        info = load_run(p)
        assert isinstance(info.state, str) and isinstance(info.step, int) and isinstance(info.total_steps, int)
        info.metrics(), info.events(), info.last_error(), info.samples(), info.is_stale  # noqa: B018
        MetricsHistory(p / "metrics.jsonl").refresh()
        EventLog(p / "events.jsonl").refresh()
        if kind.startswith("deep-") and kind != "deep-logs":
            assert any(("config.json" if "config" in kind else "status.json") in m for m in info.problems), info.problems
    bad = load_run(folders["bad-status"])
    assert bad.state == "unknown" and bad.step == 0 and bad.total_steps == 100  # from config.json's steps
    assert any("state" in m and "status.json" in m for m in bad.problems), bad.problems
    assert any("step" in m for m in bad.problems), bad.problems
    assert len(list_runs(tmp_path)) == len(folders)
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (9 << 20) + b"{}")
    with pytest.raises(ValueError, match="huge.json"):
        read_json(huge)
    nan = tmp_path / "nan.json"
    nan.write_text('{"a": NaN, "b": [Infinity, -Infinity]}')
    v = read_json(nan)
    assert v["a"] is None or (isinstance(v["a"], float) and math.isnan(v["a"]))
    rows, _ = read_jsonl(folders["deep-logs"] / "metrics.jsonl")
    assert rows  # the good rows around the deep line are kept


@pytest.mark.parametrize("page", ["pages/runs.py", "pages/monitor.py", "pages/latent.py", "pages/export.py"])
def test_pages_render_beside_hostile_run_folders(runs, page):  # noqa: F811
    folders = _hostile(runs)
    at = app(page)
    assert_ok(at)
    shown = " ".join(texts(at, "warning") + texts(at, "error") + texts(at, "markdown"))
    assert "Traceback" not in shown
    if page == "pages/runs.py":
        for kind in ("good", "good2"):  # the good runs below and above the bad ones render fully
            assert folders[kind].name in shown
        for kind in ("deep-config", "deep-status", "bad-status"):
            assert folders[kind].name in shown


@pytest.mark.parametrize("kind", ["deep-config", "bad-status", "bomb-png"])
def test_monitor_shows_each_hostile_run(runs, kind):  # noqa: F811
    folders = _hostile(runs)
    at = app("pages/monitor.py")
    at.selectbox(key="monitor_run").set_value(str(folders[kind])).run()
    assert_ok(at)


def test_runs_page_error_card_can_delete_the_broken_run(runs, monkeypatch):  # noqa: F811
    """A run whose card cannot be drawn shows an error card naming its folder, with a Delete button,
    and the runs below it still render."""
    from studio import state

    folders = _hostile(runs)
    bad = folders["bad-status"]
    (bad / "config.json").write_text(json.dumps({"config": {"arch": {"x": 1}, "resolution": [1], "loss": 3,
                                                            "steps": "many", "data": None}, "created": "yesterday",
                                                 "forked_from": 7, "dataset": "x"}))
    real = state.run_progress

    def progress(info):  # stands for any failure a damaged folder could still provoke while drawing
        if info.name == bad.name:
            raise RuntimeError("cannot draw this one")
        return real(info)

    monkeypatch.setattr(state, "run_progress", progress)
    at = app("pages/runs.py")
    assert_ok(at)
    errors = texts(at, "error")
    assert any(bad.name in m and "cannot draw this one" in m for m in errors), errors
    shown = " ".join(texts(at, "markdown"))
    assert folders["good"].name in shown and folders["good2"].name in shown  # the good run below it renders
    at.checkbox(key=f"delbroken_{bad.name}_sure").check().run()
    at.button(key=f"delbroken_{bad.name}_go").click().run()
    assert_ok(at)
    assert not bad.exists()
    assert folders["good"].exists() and folders["good2"].exists()


def test_runs_page_delete_never_deletes_through_a_link(runs, tmp_path):  # noqa: F811
    """#19 finding 4: deleting from the Runs page removes the links a run folder holds, not their targets."""
    import os

    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.png").write_bytes(b"pixels")
    p = make_run(runs, "00000-linked")
    os.symlink(outside, p / "samples" / "elsewhere")
    os.symlink(outside / "keep.png", p / "checkpoints" / "best.pt")
    at = app("pages/runs.py")
    assert_ok(at)
    at.checkbox(key="del_00000-linked_sure").check().run()
    at.button(key="del_00000-linked_go").click().run()
    assert_ok(at)
    assert not p.exists()
    assert (outside / "keep.png").read_bytes() == b"pixels" and os.listdir(outside) == ["keep.png"]


@pytest.mark.parametrize("page", ["pages/latent.py", "pages/export.py"])
@pytest.mark.parametrize("kind", ["deep-config", "bad-status", "bomb-png"])
def test_generator_pages_with_a_hostile_run_selected(runs, page, kind):  # noqa: F811
    folders = _hostile(runs)
    at = app(page)
    box = next(b for b in at.selectbox if b.label == "Run")
    box.set_value(str(folders[kind])).run()
    assert_ok(at)
    shown = " ".join(texts(at, "warning") + texts(at, "error") + texts(at, "info"))
    assert "Traceback" not in shown


@pytest.mark.parametrize("text", ["[1, 2]", DEEP, '"running"', BAD_STATUS])
def test_writer_replaces_a_damaged_status_file(tmp_path, text):
    """A resume opens the folder with RunStore: a status.json that is not an object is rewritten, not fatal."""
    from core.runs import RunStore

    run = tmp_path / "00000-x"
    run.mkdir()
    (run / "status.json").write_text(text)
    RunStore(run).write_status(state="stopped", step=3)
    info = load_run(run)
    assert info.state == "stopped" and info.step == 3
