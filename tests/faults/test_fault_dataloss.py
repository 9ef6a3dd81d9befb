"""Nothing a user made is lost: the cache touches only its own entries; resume never restarts a run
with history from step 0; two resumes of one run never train it at the same time."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from faultkit import ROOT, env_for_child, rgb_png, tiny

from core.fsutil import read_jsonl
from core.runs import RunError, load_run
from core.train import run_training
from core.train.checkpoint import list_checkpoints, load_checkpoint

# ------------------------------------------------------------------ the cache owns only its entries
USER_FILES = {
    "instances_train2017.json": json.dumps({"images": [], "annotations": [], "categories": []}),
    "package.json": json.dumps({"name": "my-app", "version": "1.0.0"}),
    "settings.json": json.dumps({"fingerprint": "settings", "format_version": 1}),
    # Named like an entry, but not one the cache wrote (no fingerprint matching its name).
    f"{hashlib.sha1(b'user').hexdigest()}.json": json.dumps({"notes": "mine"}),
    f"{hashlib.sha1(b'user').hexdigest()}.scan.json": json.dumps({"notes": "mine too"}),
    "notes.scan.json": "{}",
}


def _plant_user_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - 10 * 365 * 86400  # older than any entry: first in line for LRU eviction
    for name, text in USER_FILES.items():
        (folder / name).write_text(text)
        os.utime(folder / name, (old, old))
    return dict(USER_FILES)


def _assert_user_files_intact(folder: Path) -> None:
    for name, text in USER_FILES.items():
        assert (folder / name).is_file(), f"the cache deleted the user's {name}"
        assert (folder / name).read_text() == text, name


def _fill_cache(tmp_path: Path) -> None:
    """Real entries of every kind: a folder scan, its decoded images, a built-in dataset."""
    from core.data import load_dataset
    data = tmp_path / "images"
    for i in range(12):
        rgb_png(data / f"img_{i:02d}.png", seed=i, size=(20, 20))
    load_dataset(str(data), 16)
    load_dataset("shapes", 8, channels=1)


def test_cache_clear_and_listing_touch_only_the_caches_own_entries(tmp_path, monkeypatch, capsys):
    from core.cli import main
    from core.data.cache_evict import cache_entries
    shared = tmp_path / "shared"  # $GAN_STUDIO_CACHE pointed at a folder that also holds the user's files
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(shared))
    monkeypatch.setenv("GAN_STUDIO_CACHE_MAX_GB", "0")
    _plant_user_files(shared)
    _fill_cache(tmp_path)
    entries = cache_entries(shared)
    assert sorted(e.kind for e in entries) == ["dataset", "dataset", "scan"], entries
    assert main(["cache"]) == 0
    listing = capsys.readouterr().out
    assert "3 entries" in listing and "package" not in listing and "instances" not in listing
    assert main(["cache", "--clear"]) == 0
    assert "Removed 3 entries" in capsys.readouterr().out
    assert cache_entries(shared) == []
    _assert_user_files_intact(shared)


def test_cache_eviction_spares_the_users_files(tmp_path, monkeypatch):
    from core.data.cache_evict import cache_entries, evict
    shared = tmp_path / "shared"
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(shared))
    _plant_user_files(shared)
    # A limit far below one entry: writing each entry evicts on its own (oldest first = the user's files).
    monkeypatch.setenv("GAN_STUDIO_CACHE_MAX_GB", str(1 / 2**30))
    _fill_cache(tmp_path)
    _assert_user_files_intact(shared)
    removed = evict(shared, max_bytes=1, min_age_s=0)
    assert removed and cache_entries(shared) == []
    _assert_user_files_intact(shared)



def test_entries_of_the_old_top_level_layout_are_still_read_and_cleared(tmp_path, monkeypatch):
    """Before the entry subfolder, entries lay at the top of the cache: they keep working (a run whose
    data folder vanished resumes from them) and --clear still removes them, by the same ownership rule."""
    from core.data import load_dataset
    from core.data.cache import read_cache
    from core.data.cache_evict import ENTRY_DIR, cache_entries, clear
    shared = tmp_path / "shared"
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(shared))
    monkeypatch.setenv("GAN_STUDIO_CACHE_MAX_GB", "0")
    _plant_user_files(shared)
    ds = load_dataset("shapes", 8, channels=1)
    for f in (shared / ENTRY_DIR).iterdir():
        f.rename(shared / f.name)  # the layout an older version wrote
    (shared / f"{hashlib.sha1(b'old-scan').hexdigest()}.scan.json").write_text('{"root": "/data/x", "images": []}')
    assert read_cache(ds.fingerprint) is not None
    assert sorted((e.kind, e.folder) for e in cache_entries(shared)) == [("dataset", str(shared)),
                                                                         ("scan", str(shared))]
    removed, failed = clear(shared)
    assert len(removed) == 2 and not failed and cache_entries(shared) == []
    assert not list(shared.glob(f"{ds.fingerprint}.*"))
    _assert_user_files_intact(shared)

# ------------------------------------------------------------------ resume keeps the history
def _trained_with_best(tmp_path: Path) -> tuple[Path, int, list[dict]]:
    from core.train import create_run
    t = create_run(tiny(steps=8, log_every=1, sample_every=4, checkpoint_every=4, eval_every=3,
                        eval_samples=16), tmp_path / "runs")
    assert run_training(t) == "finished"
    run = t.store.path
    best = run / "checkpoints" / "best.pt"
    assert best.is_file()
    return run, int(load_checkpoint(best)["step"]), read_jsonl(run / "metrics.jsonl")[0]


def test_resume_with_only_best_pt_continues_from_it(tmp_path):
    from core.train import resume_run
    run, best_step, rows = _trained_with_best(tmp_path)
    for _, p in list_checkpoints(run / "checkpoints"):
        p.unlink()  # the user kept only best.pt (to save space)
    t = resume_run(run, steps=12)
    assert t.step_count == best_step > 0
    kept = read_jsonl(run / "metrics.jsonl")[0]
    assert kept == [r for r in rows if r["step"] <= best_step] and kept
    last = [e for e in load_run(run).events() if e["type"] == "state"][-1]
    assert "best.pt" in last["message"] and str(best_step) in last["message"]
    assert run_training(t) == "finished"
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl")[0]]
    assert steps == sorted(set(steps)) and steps[0] == rows[0]["step"] and steps[-1] == 12


def test_resume_falls_back_past_a_corrupt_checkpoint(tmp_path):
    from core.train import resume_run
    run, best_step, _ = _trained_with_best(tmp_path)
    cks = list_checkpoints(run / "checkpoints")
    assert [s for s, _ in cks] == [4, 8]
    cks[-1][1].write_bytes(b"not a checkpoint")  # the newest is damaged: the newest usable one is used
    t = resume_run(run, steps=12)
    assert t.step_count == max(4, best_step)  # step_0000004.pt, or best.pt when it is newer


def test_resume_refuses_to_restart_a_run_with_history_and_no_checkpoint(tmp_path):
    from core.train import resume_run
    run, _, _ = _trained_with_best(tmp_path)
    for p in (run / "checkpoints").glob("*.pt"):
        p.unlink()
    before = (run / "metrics.jsonl").read_bytes()
    with pytest.raises(RunError) as e:
        resume_run(run, steps=12)
    msg = str(e.value)
    assert run.name in msg and "no checkpoint" in msg and "fork" in msg.lower()
    assert (run / "metrics.jsonl").read_bytes() == before  # nothing truncated


# ------------------------------------------------------------------ one trainer per run folder
def test_two_resumes_at_once_the_second_is_refused(tmp_path, monkeypatch):
    """The first resume holds the run while it loads the data (the status still says 'finished'):
    a second one, in another thread or another process, is refused naming the holder's pid."""
    import core.train.setup as setup
    from core.train import create_run, resume_run
    t = create_run(tiny(steps=3), tmp_path / "runs")
    assert run_training(t) == "finished"
    run = t.store.path
    loading, go_on = threading.Event(), threading.Event()
    real_load = setup._load_data

    def slow_load(cfg, progress=None):
        loading.set()
        assert go_on.wait(60)
        return real_load(cfg, progress)

    monkeypatch.setattr(setup, "_load_data", slow_load)
    first: list = []
    th = threading.Thread(target=lambda: first.append(resume_run(run, steps=6)), daemon=True)
    th.start()
    try:
        assert loading.wait(60)
        monkeypatch.setattr(setup, "_load_data", real_load)
        assert load_run(run).state == "finished"  # the status alone cannot tell
        with pytest.raises(RunError) as e:  # another thread of this process (the studio's jobs)
            resume_run(run, steps=6)
        assert run.name in str(e.value) and f"pid {os.getpid()}" in str(e.value)
        p = subprocess.run([sys.executable, "-m", "core", "resume", str(run), "--steps", "6", "--quiet"],
                           capture_output=True, text=True, env=env_for_child(), cwd=str(ROOT), timeout=240)
        assert p.returncode == 2 and run.name in p.stderr and f"pid {os.getpid()}" in p.stderr, p.stderr
    finally:
        go_on.set()
        th.join(120)
    assert len(first) == 1 and run_training(first[0]) == "finished"
    assert load_run(run).step == 6
    again = resume_run(run, steps=9)  # the first one ended: the run is free again
    assert run_training(again) == "finished" and load_run(run).step == 9
