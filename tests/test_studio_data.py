"""Data page and Train form (#19 finding 1, #20 items 1, 3, 6): one-click scan, look vs use, a bounded
folder change check with no watcher thread, selection and form kept across a reload, presets keep edits."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import streamlit as st
from polling import wait_for
from streamlit.testing.v1 import AppTest

from studio import folder_poll

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "studio" / "app.py")


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(root))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield root
    st.cache_resource.clear()


def pngs(folder: Path, n: int, size: int = 20) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size), (10 * i % 255, 90, 200)).save(folder / f"img_{i:03d}.png")
    return folder


def data_page(folder: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    if folder is not None:
        at.segmented_control(key="data_source").set_value("Image folder").run()
        at.text_input(key="data_folder").input(str(folder))
        scan_button(at).click().run()  # one click, with the text not yet committed by a rerun
        assert not at.exception, [e.value for e in at.exception]
    return at


def scan_button(at: AppTest):  # noqa: ANN201
    return next(b for b in at.button if b.label == "Scan")


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def cache_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".scan.json")]


# ------------------------------------------------------------------ #20.1 and #20.6: scan is one click, and only looks
def test_scan_button_is_never_disabled(runs):
    at = data_page()
    at.segmented_control(key="data_source").set_value("Image folder").run()
    # A disabled Scan button with an empty box swallowed the click that committed the typed text.
    assert not scan_button(at).disabled
    scan_button(at).click().run()
    assert any("Type the path" in t for t in texts(at, "warning"))


def test_one_click_scans_and_only_looks_until_use(runs, tmp_path):
    folder = pngs(tmp_path / "imgs", 12)
    at = data_page()
    before = cache_files(tmp_path)  # the built-in dataset previewed first
    at.segmented_control(key="data_source").set_value("Image folder").run()
    at.text_input(key="data_folder").input(str(folder))
    scan_button(at).click().run()
    assert metrics(at)["Usable images"] == "12"
    # Looking selects nothing and decodes nothing into the cache
    assert "gs_dataset" not in at.session_state or at.session_state["gs_dataset"] != str(folder.resolve())
    assert cache_files(tmp_path) == before
    assert not any("selected for training" in t for t in texts(at, "success"))
    at.button(key="use").click().run()
    assert not at.exception
    assert at.session_state["gs_dataset"] == str(folder.resolve())
    assert cache_files(tmp_path), "Use for training decodes the folder into the cache"
    assert any("selected for training" in t for t in texts(at, "success"))
    at.switch_page("pages/train.py").run()
    assert at.text_input(key="cfg_data").value == str(folder.resolve())


# ------------------------------------------------------------------ #19.1: bounded change check, no watcher thread
def _watch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if "watchdog" in type(t).__module__ or "Observer" in type(t).__name__
            or "Emitter" in type(t).__name__]


def test_two_scans_leave_no_watcher_thread_and_changes_are_noticed(runs, tmp_path):
    a, b = pngs(tmp_path / "a", 8), pngs(tmp_path / "b", 9)
    at = data_page(a)
    at.text_input(key="data_folder").input(str(b))
    scan_button(at).click().run()
    assert metrics(at)["Usable images"] == "9"
    assert _watch_threads() == [], _watch_threads()  # the old code kept one observer per scanned folder
    assert not any("changed since the scan" in t for t in texts(at, "warning"))
    pngs(tmp_path / "a", 10)  # the folder no longer shown: not watched
    assert not any("changed since the scan" in t for t in texts(at.run(), "warning"))
    (b / "img_000.png").rename(b / "renamed.png")
    assert wait_for(lambda: any("renamed" in t for t in texts(at.run(), "warning")), 10, every=0.25)
    pngs(b / "sub", 2)
    assert wait_for(lambda: any("2 image files added" in t for t in texts(at.run(), "warning")), 10, every=0.25)
    at.button(key="rescan").click().run()
    assert metrics(at)["Usable images"] == "11"


def test_a_large_tree_is_not_watched_and_says_so(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(folder_poll, "LIMIT", 30)
    folder = pngs(tmp_path / "big", 12)
    for i in range(25):
        (folder / f"note_{i}.txt").write_text("x")
    at = data_page(folder)
    assert any("not watched: 37 files" in str(c.value) for c in at.caption), texts(at, "caption")


def test_snapshot_is_bounded_and_skips_the_runs_folder(tmp_path):
    folder = pngs(tmp_path / "d", 3)
    runs = folder / "runs"
    pngs(runs / "00001-x" / "samples", 4)
    snap = folder_poll.snapshot(str(folder), skip=[str(runs)])
    assert snap is not None and snap.images == 3
    pngs(runs / "00001-x" / "samples", 6)  # a training run writing samples is not a change of the data
    assert not folder_poll.changed(snap)
    assert folder_poll.snapshot(str(folder), limit=5) is None  # 3 + 4 images + folders > 5
    (folder / "img_001.png").unlink()
    assert folder_poll.changed(snap)
    assert folder_poll.describe(snap, folder_poll.snapshot(str(folder), skip=[str(runs)])) == "1 image file removed"


# ------------------------------------------------------------------ #20.3: a reload keeps the selection and the form
def test_reload_keeps_the_selection_and_the_train_form(runs, tmp_path):
    folder = pngs(tmp_path / "cats", 10)
    at = data_page(folder)
    at.button(key="use").click().run()
    at.switch_page("pages/train.py").run()
    at.number_input(key="cfg_batch_size").set_value(24).run()
    at.selectbox(key="cfg_loss").set_value("hinge").run()
    assert not at.exception

    again = AppTest.from_file(APP, default_timeout=90)  # F5: a new session
    again.run()
    assert again.session_state["gs_dataset"] == str(folder.resolve())
    again.switch_page("pages/train.py").run()
    assert again.text_input(key="cfg_data").value == str(folder.resolve())
    assert again.number_input(key="cfg_batch_size").value == 24
    assert again.selectbox(key="cfg_loss").value == "hinge"
    assert not texts(again, "warning") or not any("not the dataset" in t for t in texts(again, "warning"))
    again.text_input(key="cfg_data").input("shapes").run()
    assert any("not the dataset chosen on the Data page" in t for t in texts(again, "warning"))


def test_a_hostile_state_file_restores_nothing(runs):
    (runs / ".gan-studio-ui.json").write_text('{"dataset": 5, "form": {"batch_size": "x", "lr_g": [1]}, '
                                             '"preset": {"a": 1}}' + " " * 10)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.text_input(key="cfg_data").value == "shapes" and at.number_input(key="cfg_batch_size").value == 64


# ------------------------------------------------------------------ #20.6: changing preset keeps edits
def test_preset_change_keeps_edits_and_marks_modified(runs):
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/train.py").run()
    at.number_input(key="cfg_lr_g").set_value(0.0005).run()
    assert any("default (modified)" in str(c.value) for c in at.caption)
    at.selectbox(key="cfg_preset").set_value("wgan-gp").run()
    assert not at.exception
    assert at.number_input(key="cfg_lr_g").value == 0.0005        # the edit is kept
    assert at.selectbox(key="cfg_loss").value == "wgan-gp"         # the rest follows the preset
    assert at.number_input(key="cfg_lr_d").value == 0.0001
    assert any("wgan-gp (modified)" in str(c.value) for c in at.caption)
    at.button(key="preset_reset").click().run()
    assert at.number_input(key="cfg_lr_g").value == 0.0001
    assert not any("(modified)" in str(c.value) for c in at.caption)
