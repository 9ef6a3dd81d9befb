"""Faults during training: SIGKILL (mid-run and mid-checkpoint), disk full, OOM, divergence, data
vanishing, stop during a checkpoint write, a long pause, two runs on one device, exit with a live job."""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from faultkit import ROOT, TINY_CLI, cli, env_for_child, kill9, rgb_png, tiny, wait_for

from core.fsutil import read_jsonl
from core.runs import load_run
from core.train import run_training
from core.train.checkpoint import latest_valid_checkpoint, list_checkpoints, load_checkpoint


def image_folder(path: Path, n: int = 12) -> Path:
    for i in range(n):
        rgb_png(path / f"img_{i:02d}.png", seed=i, size=(20, 20))
    return path


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.glob("0*") if p.is_dir()) if runs.is_dir() else []


def assert_all_checkpoints_valid_and_finite(run: Path) -> None:
    for _, p in list_checkpoints(run / "checkpoints"):
        st = load_checkpoint(p)
        for net in ("G", "D"):
            assert all(torch.isfinite(v).all() for v in st[net].values() if v.is_floating_point()), p


def metric_steps(run: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(run / "metrics.jsonl")[0]]


# ------------------------------------------------------------------ SIGKILL
def test_sigkill_mid_run_then_cli_resume(tmp_path):
    data, runs = image_folder(tmp_path / "data"), tmp_path / "runs"
    every = 5
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--data", str(data), "--steps", "100000",
                             "--runs-dir", str(runs), "--quiet", *TINY_CLI, "--set", f"checkpoint_every={every}",
                             "--set", "log_every=1", "--set", "sample_every=1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_for_child(), cwd=str(ROOT))
    try:
        assert wait_for(lambda: any(len(list_checkpoints(r / "checkpoints")) >= 2 for r in run_dirs(runs)), 180), \
            proc.stderr.read().decode() if proc.poll() is not None else "no second checkpoint"
    finally:
        kill9(proc)
    (run,) = run_dirs(runs)
    assert load_run(run).state == "interrupted"  # the writer is gone: the studio shows it as such
    with open(run / "metrics.jsonl", "ab") as f:  # what a kill in the middle of an append leaves
        f.write(b'{"step": 999999, "loss/d": 0.5')
    last_logged = max(metric_steps(run))  # the torn line is not returned by the reader
    ck_step = latest_valid_checkpoint(run / "checkpoints")[1]["step"]
    assert 0 <= last_logged - ck_step <= every  # at most one checkpoint interval is lost

    r = cli("resume", str(run), "--steps", str(ck_step + 6), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"at step {ck_step}" in r.stderr
    steps = metric_steps(run)
    assert steps == sorted(set(steps)), "a step appears twice or out of order in metrics.jsonl"
    assert steps[-1] == ck_step + 6 and 999999 not in steps
    for line in (run / "metrics.jsonl").read_bytes().splitlines():
        json.loads(line)  # every line is whole JSON again
    assert load_run(run).state == "finished"
    assert_all_checkpoints_valid_and_finite(run)


CHILD_KILLED_IN_CHECKPOINT = r"""
import os, sys, time
import core.fsutil as fsutil
from core.config import TrainConfig
from core.train import create_run
from core.train import run_training

runs, marker = sys.argv[1], sys.argv[2]
real_fdopen = os.fdopen

class HalfWriter:
    '''Writes half the checkpoint, makes it reach the disk, then hangs: the parent kills us here.'''
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *a): self.f.close()
    def write(self, data):
        self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        with open(marker, "w") as m:
            m.write(str(len(data)))
        time.sleep(600)

def fdopen(fd, *a, **k):
    f = real_fdopen(fd, *a, **k)
    return HalfWriter(f) if ".step_0000004.pt." in os.readlink(f"/proc/self/fd/{fd}") else f

fsutil.os.fdopen = fdopen
cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=100,
                  log_every=1, sample_every=1000, checkpoint_every=2, device="cpu", threads=1)
t = create_run(cfg, runs)
print(t.store.path, flush=True)
run_training(t)
"""


def test_sigkill_mid_checkpoint_write_keeps_previous(tmp_path):
    runs, marker = tmp_path / "runs", tmp_path / "in-write"
    proc = subprocess.Popen([sys.executable, "-c", CHILD_KILLED_IN_CHECKPOINT, str(runs), str(marker)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_child(), cwd=str(ROOT))
    try:
        assert wait_for(marker.exists, 180), proc.stderr.read().decode() if proc.poll() is not None else "timeout"
    finally:
        kill9(proc)
    (run,) = run_dirs(runs)
    full = int(marker.read_text())
    partial = list((run / "checkpoints").glob(".step_0000004.pt.*.tmp"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < full  # a torn file really is on disk...
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2]  # ...but it is never listed
    path, state = latest_valid_checkpoint(run / "checkpoints")
    assert state["step"] == 2 and path.name == "step_0000002.pt"
    assert load_run(run).state == "interrupted"

    from core.train import resume_run
    t = resume_run(run, steps=6)
    assert t.step_count == 2
    assert not list((run / "checkpoints").glob(".*.tmp"))  # resume clears the dead writer's temp file
    assert run_training(t) == "finished"
    assert [s for s, _ in list_checkpoints(run / "checkpoints")][-1] == 6
    steps = metric_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 6
    assert_all_checkpoints_valid_and_finite(run)


# ------------------------------------------------------------------ stop during a checkpoint write
def test_stop_during_checkpoint_write(tmp_path, monkeypatch):
    import core.train.loop as loop
    from core.jobs import JobManager
    real_save = loop.save_checkpoint
    in_write, stop_sent = threading.Event(), threading.Event()

    def slow_save(path, state):
        if Path(path).name == "step_0000004.pt":
            in_write.set()
            stop_sent.wait(30)
            time.sleep(0.3)  # the stop request is now on disk and in the Event while we write
        return real_save(path, state)
    monkeypatch.setattr(loop, "save_checkpoint", slow_save)
    jm = JobManager(tmp_path / "runs")
    run = jm.start(tiny(steps=100000, checkpoint_every=4, log_every=2, sample_every=1000))
    assert in_write.wait(120)
    jm.stop(run)
    stop_sent.set()
    jm.job_for(run).join(60)
    info = load_run(run)
    assert info.state == "stopped" and "Stopped by the user" in info.status["message"]
    cks = list_checkpoints(run / "checkpoints")
    assert cks[0][0] == 4 and cks[-1][0] == info.step  # the interrupted write completed; a final one followed
    assert not list((run / "checkpoints").glob(".*.tmp"))
    assert_all_checkpoints_valid_and_finite(run)


# ------------------------------------------------------------------ non-finite
def test_nonfinite_weights_at_a_sample_step_end_as_diverged(tmp_path, monkeypatch):
    """Weights turn NaN right before a sample + checkpoint step (losses still finite when last logged):
    the run ends 'diverged' (not 'failed', not looping), and no checkpoint holds a NaN."""
    from core.train import create_run
    t = create_run(tiny(steps=10**6, log_every=5, sample_every=3, checkpoint_every=3), tmp_path)
    real_step = t.step

    def step(**kw):
        out = real_step(**kw)
        if t.step_count == 6:
            with torch.no_grad():
                next(t.G.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(t, "step", step)
    t0 = time.monotonic()
    assert run_training(t) == "diverged"
    assert time.monotonic() - t0 < 60 and t.step_count == 6
    info = load_run(t.store.path)
    assert info.state == "diverged" and "last good checkpoint is kept" in info.status["message"]
    assert [s for s, _ in list_checkpoints(t.store.checkpoints_dir)] == [3]
    assert_all_checkpoints_valid_and_finite(t.store.path)


def _poison_at(t, monkeypatch, steps: set[int]) -> None:
    """Make G's weights NaN right after each step in ``steps`` (a divergence the loop must catch)."""
    real_step = t.step

    def step(**kw):
        out = real_step(**kw)
        if t.step_count in steps:
            steps.discard(t.step_count)
            with torch.no_grad():
                next(t.G.parameters()).fill_(float("nan"))
        return out
    monkeypatch.setattr(t, "step", step)


def test_on_diverge_rollback_reloads_the_last_good_checkpoint_once_with_lower_lr(tmp_path, monkeypatch):
    """on_diverge=rollback: weights poisoned after step 7 (NaN losses at step 8) roll back to step 6 with lr/4 and the run finishes;
    metrics never show a step twice; the lowered lr is in later checkpoints (so resume keeps it)."""
    from core.train import create_run
    cfg = tiny(steps=15, log_every=1, sample_every=3, checkpoint_every=3, on_diverge="rollback")
    t = create_run(cfg, tmp_path)
    _poison_at(t, monkeypatch, {7})
    assert run_training(t) == "finished"
    run = t.store.path
    events = [e for e in read_jsonl(run / "events.jsonl")[0] if e["type"] == "rollback"]
    assert len(events) == 1 and events[0]["diverged_at"] == 8 and events[0]["step"] == 6 and events[0]["checkpoint"].endswith(".pt")
    assert "rolled back to step 6" in events[0]["message"]
    steps = metric_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 15, steps  # rows 7.. of the bad branch were dropped
    final = load_checkpoint(latest_valid_checkpoint(run / "checkpoints")[0])
    assert final["opt_g"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr_g / 4)
    assert final["opt_d"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr_d / 4)
    assert final["extra"]["rolled_back_at"] == 8
    assert_all_checkpoints_valid_and_finite(run)


def test_on_diverge_rollback_happens_only_once(tmp_path, monkeypatch):
    """A second divergence after the rollback ends the run as diverged: it never loops."""
    from core.train import create_run
    t = create_run(tiny(steps=10**6, log_every=1, sample_every=3, checkpoint_every=3, on_diverge="rollback"),
                   tmp_path)
    _poison_at(t, monkeypatch, {7, 11})
    t0 = time.monotonic()
    assert run_training(t) == "diverged"
    assert time.monotonic() - t0 < 60
    kinds = [e["type"] for e in read_jsonl(t.store.path / "events.jsonl")[0]]
    assert kinds.count("rollback") == 1 and "diverged" in kinds
    assert_all_checkpoints_valid_and_finite(t.store.path)


def test_on_diverge_rollback_without_a_checkpoint_stops(tmp_path, monkeypatch):
    from core.train import create_run
    t = create_run(tiny(steps=10**6, log_every=1, sample_every=50, checkpoint_every=50, on_diverge="rollback"),
                   tmp_path)
    _poison_at(t, monkeypatch, {2})
    assert run_training(t) == "diverged"
    assert not [e for e in read_jsonl(t.store.path / "events.jsonl")[0] if e["type"] == "rollback"]


# ------------------------------------------------------------------ OOM in the job manager
def test_injected_oom_fails_clearly_and_the_next_run_starts(tmp_path, monkeypatch):
    from core.jobs import JobManager
    from core.train.trainer import Trainer
    real_step = Trainer.step

    def step(self, *a, **k):
        if self.cfg.name == "victim" and self.step_count >= 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real_step(self, *a, **k)
    monkeypatch.setattr(Trainer, "step", step)
    jm = JobManager(tmp_path / "runs")
    run = jm.start(tiny(name="victim", steps=1000, checkpoint_every=3))
    job = jm.job_for(run)
    job.join(120)
    assert job.final_state == "failed"
    msg = load_run(run).status["message"]
    assert "batch_size=8" in msg and "resolution=16" in msg and "batch_size=4" in msg, msg
    assert load_checkpoint(run / "checkpoints" / "step_0000003.pt")["step"] == 3  # intact
    assert job.error and "Out of memory" in job.error
    run2 = jm.start(tiny(name="next", steps=4))  # no JobBusy, no restart needed
    jm.job_for(run2).join(120)
    assert load_run(run2).state == "finished"


# ------------------------------------------------------------------ disk full
def test_enospc_while_writing_a_sample(tmp_path, monkeypatch):
    import core.train.loop as loop
    from core.train import create_run
    real = loop.atomic_write_bytes

    def write(path, data, fsync=True, **kw):
        if Path(path).parent.name == "samples" and Path(path).name >= "step_0000006.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, fsync=fsync, **kw)
    monkeypatch.setattr(loop, "atomic_write_bytes", write)
    t = create_run(tiny(steps=1000, sample_every=3, checkpoint_every=3), tmp_path)
    assert run_training(t) == "failed"
    info = load_run(t.store.path)
    assert info.state == "failed" and info.status["message"].startswith("Disk full"), info.status
    assert "previous checkpoint is intact" in info.status["message"]
    assert [s for s, _ in list_checkpoints(t.store.checkpoints_dir)] == [3]
    assert load_checkpoint(t.store.checkpoints_dir / "step_0000003.pt")["step"] == 3
    assert info.last_error().startswith("Disk full")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 8 MiB filesystem (root only): lets the disk really fill up."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the injected-ENOSPC tests cover this")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_real_disk_full_mid_run(tmp_path, small_tmpfs):
    """The run folder's filesystem fills up after the first checkpoint: every later write fails with ENOSPC.
    The run returns 'failed' (never raises), the checkpoint survives, and resume works once space is freed."""
    from core.train import create_run, resume_run
    t = create_run(tiny(steps=10**6, log_every=1, sample_every=1000, checkpoint_every=3), small_tmpfs)
    real_step, filler = t.step, small_tmpfs / "filler"

    def step(**kw):
        out = real_step(**kw)
        if t.step_count == 4 and not filler.exists():  # fill the disk to the last byte
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                try:
                    f.close()
                except OSError:
                    pass
        return out
    t.step = step
    assert run_training(t) == "failed"  # returned: no exception escaped the loop
    assert "Disk full" in t.last_message, t.last_message
    assert load_checkpoint(t.store.checkpoints_dir / "step_0000003.pt")["step"] == 3
    filler.unlink()  # the user frees space
    run = t.store.path
    read_jsonl(run / "metrics.jsonl")  # still readable
    # status.json could not be updated while the disk was full; this process is alive, so the run
    # reads as 'running' until the status goes stale; a resumer in a new process would see it dead.
    st = json.loads((run / "status.json").read_text())
    st["pid"] = 2**22 + 1  # pretend the writer is gone (as after a CLI exit or a server restart)
    (run / "status.json").write_text(json.dumps(st))
    t2 = resume_run(run, steps=8)
    assert t2.step_count == 3 and run_training(t2) == "finished"
    assert metric_steps(run) == sorted(set(metric_steps(run)))


# ------------------------------------------------------------------ the data folder goes away
def test_data_folder_deleted_during_training(tmp_path):
    from core.jobs import JobManager
    data = image_folder(tmp_path / "data")
    jm = JobManager(tmp_path / "runs")
    run = jm.start(tiny(data=str(data), steps=40, log_every=2, checkpoint_every=20, sample_every=20))
    assert wait_for(lambda: load_run(run).step >= 2, 120)
    shutil.rmtree(data)
    shutil.rmtree(os.environ["GAN_STUDIO_CACHE"])  # and the decoded cache with it
    jm.job_for(run).join(120)
    info = load_run(run)
    assert info.state == "finished" and info.step == 40, info.status


def test_resume_after_the_data_folder_vanished(tmp_path):
    from core.data import DataError
    from core.train import create_run, resume_run
    data = image_folder(tmp_path / "data")
    t = create_run(tiny(data=str(data), steps=3), tmp_path / "runs")
    assert run_training(t) == "finished"
    run = t.store.path
    # the folder changed (one more image): resume continues and says so in events.jsonl
    rgb_png(data / "extra.png", seed=99, size=(20, 20))
    t2 = resume_run(run, steps=6)
    assert run_training(t2) == "finished"
    assert any(e["type"] == "warning" and "changed" in e["message"] for e in load_run(run).events())
    # the folder is gone but its decoded cache is not: resume continues on the cache and says so
    shutil.rmtree(data)
    t3 = resume_run(run, steps=8)
    assert run_training(t3) == "finished" and load_run(run).step == 8
    assert any(e["type"] == "warning" and "decoded cache" in e["message"] for e in load_run(run).events())
    # folder and cache both gone: a clear error that names the folder, and the run folder is left as it was
    shutil.rmtree(os.environ["GAN_STUDIO_CACHE"])
    before = (run / "status.json").read_text()
    with pytest.raises(DataError) as e:
        resume_run(run, steps=12)
    assert str(data) in str(e.value) and "no such folder" in str(e.value) and "cache" in str(e.value)
    assert (run / "status.json").read_text() == before
    assert load_run(run).state == "finished"


# ------------------------------------------------------------------ a long pause
def test_long_pause_sleeps_and_stays_paused(tmp_path, monkeypatch):
    """Paused: no CPU burn, the step does not move, the status keeps its heartbeat (a paused run never
    looks 'interrupted', however long the pause), and it can be neither resumed twice nor deleted."""
    import core.runs as runs_mod
    import core.train.loop as loop
    from core.jobs import JobManager
    from core.runs import RunError, delete_run
    from core.train import resume_run
    monkeypatch.setattr(runs_mod, "STALE_AFTER_S", 1.5)  # "an hour" compressed: stale after 1.5 s of silence
    monkeypatch.setattr(loop, "HEARTBEAT_S", 0.5)
    jm = JobManager(tmp_path / "runs")
    run = jm.start(tiny(steps=10**6, log_every=50, sample_every=10**5, checkpoint_every=10**5))
    assert wait_for(lambda: load_run(run).step >= 1, 120)
    jm.pause(run)
    assert wait_for(lambda: load_run(run).state == "paused", 30)
    step = load_run(run).step
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(4.0)  # > STALE_AFTER_S: only the heartbeat keeps the run from looking dead
    ru1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    info = load_run(run)
    assert info.state == "paused" and info.step == step
    assert cpu < 0.25 * wall, f"paused loop used {cpu:.2f} s CPU in {wall:.1f} s"
    with pytest.raises(RunError):
        resume_run(run, steps=10**6 + 1)
    with pytest.raises(RunError):
        delete_run(tmp_path / "runs", run)
    jm.unpause(run)
    assert wait_for(lambda: load_run(run).step > step, 60)
    jm.stop(run, wait=True)
    assert load_run(run).state == "stopped"


# ------------------------------------------------------------------ two runs, one device
def test_two_simultaneous_starts_one_job(tmp_path):
    from core.jobs import JobBusy, JobManager
    jm = JobManager(tmp_path / "runs")
    barrier, results = threading.Barrier(2), []

    def start(name):
        barrier.wait()
        try:
            results.append(("ok", jm.start(tiny(name=name, steps=10**6, checkpoint_every=10**6))))
        except JobBusy as e:
            results.append(("busy", str(e)))
    threads = [threading.Thread(target=start, args=(n,)) for n in ("a", "b")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert sorted(r[0] for r in results) == ["busy", "ok"], results
    busy = next(r[1] for r in results if r[0] == "busy")
    assert "cpu is already training" in busy and "stop it first" in busy
    assert len(run_dirs(tmp_path / "runs")) == 1  # the refused start made no folder
    jm.shutdown(timeout=60)
    assert load_run(run_dirs(tmp_path / "runs")[0]).state == "stopped"


# ------------------------------------------------------------------ exit with a live job
def test_interpreter_exit_stops_and_joins_the_training_thread(tmp_path):
    runs = tmp_path / "runs"
    script = textwrap.dedent(f"""
        import time
        from core.config import TrainConfig
        from core.jobs import JobManager
        from core.runs import load_run
        cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                          steps=10**6, log_every=1, sample_every=10**5, checkpoint_every=10**5, device="cpu",
                          threads=1)
        jm = JobManager({str(runs)!r})
        run = jm.start(cfg)
        while load_run(run).step < 2:
            time.sleep(0.05)
        print(run, flush=True)
        # falling off the end of the script: the atexit hook must stop and join the daemon thread
    """)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env_for_child(),
                       cwd=str(ROOT), timeout=180)
    assert p.returncode == 0, p.stderr
    run = Path(p.stdout.strip().splitlines()[-1])
    info = load_run(run)
    assert info.state == "stopped", info.status
    cks = list_checkpoints(run / "checkpoints")
    assert cks and cks[-1][0] == info.step  # the final checkpoint was written before exit
    assert time.monotonic() - t0 < 120


def test_disk_full_on_the_metrics_log_never_raises(tmp_path):
    """The append-only metrics log hits ENOSPC (a real one: its file is swapped for /dev/full). Python keeps
    the unwritten bytes buffered, so closing the log raises ENOSPC again: the run must still return
    'failed' with the disk-full message instead of letting that escape (a traceback in the CLI)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    from core.train import create_run
    t = create_run(tiny(steps=10**6, log_every=1, sample_every=1000, checkpoint_every=3), tmp_path)
    real_step = t.step

    def step(**kw):
        out = real_step(**kw)
        if t.step_count == 4:
            t.store._metrics._f.close()
            t.store._metrics._f = open("/dev/full", "a", encoding="utf-8")
        return out
    t.step = step
    assert run_training(t) == "failed"
    assert t.last_message.startswith("Disk full"), t.last_message
    assert load_run(t.store.path).state == "failed"
    assert load_checkpoint(t.store.checkpoints_dir / "step_0000003.pt")["step"] == 3
