"""Process-level concurrency: two hosts sharing a runs folder, the studio and the CLI on one run, Delete
while a run trains, and SIGTERM to the studio server while it trains (#19 finding 6)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import ROOT, cli, env_for_child, tiny, wait_for

import core.runs as runs_mod
from core.runs import RunError, RunStore, delete_run, list_runs, load_run
from core.train import create_run, resume_run, run_training

FOREIGN = "host-a.example"  # a machine that shares the runs folder (NFS, SMB, sshfs): its flock is not ours


def _finished(tmp_path: Path, steps: int = 3) -> Path:
    """A finished 3-step run (final checkpoint only: a resume of it to 1,000,000 steps writes none until stopped)."""
    t = create_run(tiny(steps=steps, checkpoint_every=100_000, sample_every=100_000, log_every=50), tmp_path / "runs")
    assert run_training(t) == "finished"
    return t.store.path


def _as_host_a(run: Path, state: str | None = None, age_s: float = 0.0, pid: int = 4242, lock: bool = True) -> None:
    """Write what a training on host A leaves in the shared folder: the lock record (its flock is invisible
    here) and, with ``state``, its status.json whose heartbeat is ``age_s`` old."""
    t = time.time() - age_s
    if lock:
        (run / RunStore.LOCK).write_text(json.dumps({"pid": pid, "host": FOREIGN, "started": t}) + "\n")
    if state:
        st = json.loads((run / RunStore.STATUS).read_text())
        st.update(state=state, pid=pid, host=FOREIGN, updated=t)
        (run / RunStore.STATUS).write_text(json.dumps(st))


def _status(run: Path) -> dict:
    return json.loads((run / RunStore.STATUS).read_text())


def _events(run: Path) -> list[dict]:
    return load_run(run).events()


# ------------------------------------------------------------------ 1. two machines sharing a runs folder
def test_resume_is_refused_while_another_host_holds_the_run(tmp_path):
    """Host A took the run a moment ago and is loading its data (its status still says finished; its flock
    is not visible here): a resume on this host is refused, naming host A and its pid."""
    run = _finished(tmp_path)
    _as_host_a(run)
    assert load_run(run).state == "finished"  # the status alone cannot tell
    before = (run / RunStore.LOCK).read_bytes()
    with pytest.raises(RunError) as e:
        resume_run(run, steps=6)
    assert run.name in str(e.value) and FOREIGN in str(e.value) and "pid 4242" in str(e.value), e.value
    assert (run / RunStore.LOCK).read_bytes() == before  # A's record is left alone
    # A's training an hour in: the lock record is old, the status heartbeat is fresh.
    _as_host_a(run, state="running", age_s=2.0)
    _as_host_a(run, age_s=3600, state=None)
    with pytest.raises(RunError) as e:
        RunStore(run).lock()
    assert FOREIGN in str(e.value) and "pid 4242" in str(e.value), e.value
    with pytest.raises(RunError) as e:
        resume_run(run, steps=6)
    assert FOREIGN in str(e.value) and "pid 4242" in str(e.value), e.value
    assert _status(run)["host"] == FOREIGN and _status(run)["state"] == "running"


def test_the_stale_lock_of_a_crashed_host_is_taken_over_and_said_so(tmp_path):
    run = _finished(tmp_path)
    _as_host_a(run, state="running", age_s=2 * runs_mod.STALE_AFTER_S)  # A died mid-run 10 min ago
    assert load_run(run).state == "interrupted"
    t = resume_run(run, steps=6)
    took = [e for e in _events(run) if e["type"] == "warning" and "Took over" in e.get("message", "")]
    assert len(took) == 1 and FOREIGN in took[0]["message"] and "4242" in took[0]["message"], took
    rec = json.loads((run / RunStore.LOCK).read_text())
    assert rec["pid"] == os.getpid() and rec["host"] == runs_mod.HOST
    assert run_training(t) == "finished" and load_run(run).step == 6
    assert (run / RunStore.LOCK).read_text() == ""  # released and emptied: no one mistakes it for a holder


def test_a_run_of_another_host_is_alive_by_its_heartbeat_not_by_a_local_pid(tmp_path):
    run = _finished(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no local process has now
    cases = [(os.getpid(), 2 * runs_mod.STALE_AFTER_S, "interrupted"),  # a local pid that exists: still dead
             (gone.pid, 1.0, "running")]  # no such local pid: still alive
    for pid, age, want in cases:
        _as_host_a(run, state="running", age_s=age, pid=pid)
        assert load_run(run).state == want, (pid, age)
        assert [r.state for r in list_runs(run.parent)] == [want]
        held = runs_mod.lock_holder(load_run(run))
        assert (held is not None) == (want == "running") and (not held or FOREIGN in held), held
    st = _status(run)
    st.update(host=runs_mod.HOST, pid=gone.pid, updated=time.time())  # this host, dead pid: interrupted at once
    (run / RunStore.STATUS).write_text(json.dumps(st))
    assert load_run(run).state == "interrupted"


# ------------------------------------------------------------------ 2. the studio and the CLI on one run
def test_cli_resume_is_refused_while_the_studio_trains_the_run(tmp_path):
    from core.jobs import JobManager
    jm = JobManager(tmp_path / "runs")
    try:
        run = jm.start(tiny(steps=1_000_000, checkpoint_every=100_000, sample_every=100_000, log_every=50))
        assert wait_for(lambda: load_run(run).state == "running", 60)
        jm.pause(run)  # the studio's run idles while the CLI starts (CPU is shared)
        assert wait_for(lambda: load_run(run).state == "paused", 60)
        lock, n_events = (run / RunStore.LOCK).read_text(), len(_events(run))
        p = cli("resume", str(run), "--steps", "10", "--quiet")
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, p.stderr
        assert run.name in lines[0] and f"pid {os.getpid()}" in lines[0], lines
        assert (run / RunStore.LOCK).read_text() == lock and len(_events(run)) == n_events
        assert _status(run)["pid"] == os.getpid() and _status(run)["state"] == "paused"
        step = load_run(run).step
        jm.unpause(run)
        assert wait_for(lambda: load_run(run).step > step, 60)  # the studio's training goes on
        jm.stop(run, wait=True)
        assert jm.job_for(run).final_state == "stopped"
    finally:
        jm.shutdown()


@pytest.mark.slow  # a CLI training beside this process: ~25 s on a busy 2-core machine
def test_studio_resume_and_delete_are_refused_while_the_cli_trains_the_run(tmp_path):
    from core.jobs import JobManager
    run = _finished(tmp_path)
    err_path = tmp_path / "cli.err"
    err = open(err_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "core", "resume", str(run), "--steps", "1000000", "--quiet"],
                            env=env_for_child(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=err)
    jm = JobManager(tmp_path / "runs")
    try:
        # First while the CLI may still be loading its data (its lock is taken, its status not yet written),
        # then while it trains: the Runs page sees it as held, and the studio's Resume and Delete refuse.
        assert wait_for(lambda: runs_mod.lock_holder(load_run(run)) is not None, 120), err_path.read_text()
        for _ in range(2):
            assert f"pid {proc.pid}" in runs_mod.lock_holder(load_run(run))
            with pytest.raises(RunError) as e:
                jm.resume(run, steps=2_000_000)
            assert run.name in str(e.value) and f"pid {proc.pid}" in str(e.value), e.value
            with pytest.raises(RunError) as e:
                delete_run(run.parent, run)
            assert f"pid {proc.pid}" in str(e.value) and run.is_dir(), e.value
            assert jm.active() is None
            assert wait_for(lambda: load_run(run).state == "running" and load_run(run).step > 3, 120)
        runs_mod.write_control(run, state="stopped")
        assert proc.wait(120) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        jm.shutdown()
        err.close()
    assert load_run(run).state == "stopped" and _status(run)["pid"] == proc.pid


# ------------------------------------------------------------------ 3. Delete while a run trains
def test_delete_is_refused_while_any_process_holds_the_run(tmp_path):
    run = _finished(tmp_path)
    holder = RunStore(run)
    holder.lock()  # a resume's first moment: the folder is taken while the status still says finished
    try:
        assert load_run(run).state == "finished"
        with pytest.raises(RunError) as e:
            delete_run(run.parent, run)
        assert run.name in str(e.value) and f"pid {os.getpid()}" in str(e.value), e.value
        assert run.is_dir() and (run / "checkpoints").is_dir()
    finally:
        holder.unlock()
    _as_host_a(run)  # another machine took it (its flock is invisible here)
    with pytest.raises(RunError) as e:
        delete_run(run.parent, run)
    assert FOREIGN in str(e.value) and "pid 4242" in str(e.value) and run.is_dir(), e.value
    _as_host_a(run, age_s=2 * runs_mod.STALE_AFTER_S)  # ... and crashed long ago
    delete_run(run.parent, run)
    assert not run.exists()


def test_runs_page_will_not_delete_a_run_being_resumed(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    run = _finished(tmp_path)
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(run.parent))
    st.cache_resource.clear()
    holder = RunStore(run)
    holder.lock()
    try:
        at = AppTest.from_file(str(ROOT / "studio" / "app.py"), default_timeout=90)
        at.run()
        at.switch_page("pages/runs.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.button(key=f"resdis_{run.name}").disabled  # the card shows the run as training
        at.checkbox(key=f"del_{run.name}_sure").check().run()
        at.button(key=f"del_{run.name}_go").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert run.is_dir()
    finally:
        holder.unlock()
        st.cache_resource.clear()


def _kill_server(proc: subprocess.Popen, child: int, port: int) -> None:
    """SIGKILL run_studio.py and its Streamlit child, the child only while it is still the one serving ``port``
    (once reaped, its pid may belong to anyone)."""
    try:
        if child and f"\0{port}\0".encode() in Path(f"/proc/{child}/cmdline").read_bytes():
            os.kill(child, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


# ------------------------------------------------------------------ 4. SIGTERM to the studio server while it trains
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("to", ["parent", "both"])
def test_sigterm_to_the_studio_server_stops_its_training_with_a_final_checkpoint(tmp_path, to):
    """The real server (run_studio.py and its Streamlit child): a run resumed from the Runs page in the browser
    ends `stopped` with a checkpoint at its last step. SIGTERM to the parent only (`kill PID`), or to both at
    once (systemd's default KillMode=control-group: the child also gets the parent's forwarded copy)."""
    from e2e import driver
    if not driver.have_browser():
        pytest.skip("needs playwright and /usr/bin/chromium")
    run = _finished(tmp_path)
    port, log, child = driver.free_port(), tmp_path / "server.log", 0
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run_studio.py"), "--no-browser", "--port", str(port),
                                 "--runs-dir", str(run.parent)], cwd=str(ROOT), stdout=out, stderr=subprocess.STDOUT,
                                env=env_for_child(GAN_STUDIO_CACHE=os.environ["GAN_STUDIO_CACHE"]),
                                start_new_session=True)
    try:
        import urllib.request

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_for(healthy, 90, 0.5), log.read_text(errors="replace")[-2000:]
        child = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])  # Streamlit
        with driver.browser_page() as page:
            driver.open_app(page, f"http://127.0.0.1:{port}")
            driver.nav(page, "Runs")
            until = page.get_by_label("Train until step", exact=True).first
            button = page.get_by_role("button", name="Resume").first
            for attempt in range(3):  # a click that lands while the page redraws (a busy machine) can be lost
                if button.get_attribute("aria-expanded") != "true":
                    button.click(timeout=60_000)
                try:
                    until.wait_for(state="visible", timeout=45_000)
                    break
                except Exception:  # noqa: BLE001 - playwright's TimeoutError
                    if attempt == 2:
                        raise
            driver.set_input(page, "Train until step", 1_000_000)
            driver.click(page, "Resume training")
            assert wait_for(lambda: _status(run).get("state") == "running" and _status(run).get("step", 0) > 10,
                            90, 0.2), _status(run)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        if to == "both":
            os.kill(child, signal.SIGTERM)
        proc.wait(90)
        assert wait_for(lambda: not Path(f"/proc/{child}").exists(), 30)
        print(f"SIGTERM to {to}: the server exited in {time.monotonic() - t0:.1f} s")
    finally:  # the Streamlit child has its own session: a failed test must not leave it serving
        _kill_server(proc, child, port)
    info = load_run(run)
    cks = sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert info.status.get("state") == "stopped", (info.status, log.read_text(errors="replace")[-3000:])
    assert cks and cks[-1] == info.step > 10, (cks, info.step)
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert (run / RunStore.LOCK).read_text() == ""  # released: nothing says it is still held
