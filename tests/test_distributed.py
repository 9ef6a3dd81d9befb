"""DDP on CPU (gloo, 2 processes): first-step gradients equal one process with twice the batch; kill + resume."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from polling import wait_for

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), *args]


def start_two_rank_run(tmp_path: Path, checkpoint_every: int, stderr=subprocess.DEVNULL, steps: int = 100000,
                       extra: tuple[str, ...] = ()):
    """A tiny 2-process CPU training run under torchrun, in its own session; (process, announce file)."""
    announce = tmp_path / "run_dir.txt"
    common = ["--set", "g_width=8", "--set", "d_width=8", "--set", "latent_dim=16", "--set", "threads=1",
              "--set", "log_every=2", "--set", f"checkpoint_every={checkpoint_every}", "--set", "sample_every=1000",
              "--device", "cpu", *extra]
    p = subprocess.Popen(torchrun("-m", "core", "train", "--data", "shapes", "--resolution", "16",
                                  "--batch-size", "4", "--steps", str(steps), "--runs-dir", str(tmp_path / "runs"),
                                  "--announce", str(announce), "--quiet", *common),
                         env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                         start_new_session=True)
    return p, announce


def wait_for_run(announce: Path, ready, what: str, timeout: float = 240) -> Path:
    """The announced run folder once ``ready(run_dir)`` holds; fails the test with ``what`` otherwise."""
    if not wait_for(lambda: announce.exists() and ready(Path(announce.read_text())), timeout, every=0.5):
        pytest.fail(what)
    return Path(announce.read_text())


def kill_run(p: subprocess.Popen, announce: Path) -> None:
    os.killpg(p.pid, signal.SIGKILL)  # no clean shutdown: like a node dying
    subprocess.run(["pkill", "-9", "-f", str(announce)])  # the workers, if torchrun gave them own groups
    p.wait(30)


@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge"])
def test_two_ranks_match_one_rank_with_double_batch(tmp_path, loss):
    worker = str(ROOT / "tests" / "helpers" / "ddp_first_step.py")
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, worker, str(one), loss], env=ENV, check=True, timeout=300, cwd=ROOT)
    for _attempt in range(2):  # a free port can be taken by another process before torchrun binds it
        r = subprocess.run(torchrun(worker, str(two), loss), env=ENV, timeout=300, cwd=ROOT, capture_output=True,
                           text=True)
        if r.returncode == 0:
            break
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = torch.load(one, weights_only=True), torch.load(two, weights_only=True)
    for net in ("d", "g"):
        ga, gb = a["grads"][net], b["grads"][net]
        assert ga.keys() == gb.keys() and ga
        for k in ga:
            torch.testing.assert_close(gb[k], ga[k], rtol=1e-4, atol=1e-6, msg=f"{loss} {net} {k}")


def test_two_rank_run_resumes_after_kill(tmp_path):
    p, announce = start_two_rank_run(tmp_path, checkpoint_every=4)
    try:
        run_dir = wait_for_run(announce, lambda d: len(list((d / "checkpoints").glob("step_*.pt"))) >= 2,
                               "the 2-rank run wrote no checkpoints in time")
    finally:
        kill_run(p, announce)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "running"  # killed: nobody wrote a final state
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    last_step = int(ckpts[-1].stem.split("_")[1])
    time.sleep(0.5)
    from core.runs import load_run
    assert load_run(run_dir).state == "interrupted"  # its process is gone: not shown as running
    r = subprocess.run(torchrun("-m", "core", "resume", str(run_dir), "--steps", str(last_step + 6), "--quiet"),
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == last_step + 6
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    assert any(f"Resumed from step_{last_step:07d}.pt" in (e.get("message") or "") for e in events)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(steps) == len(set(steps))


def test_ctrl_c_on_torchrun_stops_every_rank_with_a_final_checkpoint(tmp_path):
    """torchrun passes a Ctrl-C on to its workers: they stop together at the next shared decision,
    rank 0 writes a final checkpoint at that step, and the run ends `stopped` (not `failed` from a
    rank that died in the middle of a collective)."""
    p, announce = start_two_rank_run(tmp_path, checkpoint_every=1000, stderr=subprocess.PIPE)
    try:
        run_dir = wait_for_run(announce, lambda d: json.loads((d / "status.json").read_text() or "{}").get("step", 0) >= 20,
                               "the 2-rank run did not get going in time")
        p.send_signal(signal.SIGINT)  # the agent only, as the test cannot type Ctrl-C into a terminal
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            kill_run(p, announce)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped", (status, err[-3000:])
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    assert ckpts and int(ckpts[-1].stem.split("_")[1]) == status["step"], (ckpts, status)
    assert status["step"] % 10 == 0  # a shared decision step: every rank stopped at the same one
    assert "stopped: Stopped by the user" in err and "terminate called" not in err, err[-3000:]
    assert "rank 1:" not in err and "Warning" not in err, err[-3000:]  # rank 1 ended well too; no deprecations


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def _status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text() or "{}")
    except (OSError, ValueError):
        return {}


# Periodic evaluation every 4 steps on 64 samples: rank 0 scores the generator and saves best.pt
# while rank 1 goes on to the next collective (this hung at the first evaluation before).
EVAL = ("--set", "eval_every=4", "--set", "eval_samples=64")


def test_two_rank_run_with_evaluation_checkpoint_now_and_stop_then_resume(tmp_path):
    p, announce = start_two_rank_run(tmp_path, checkpoint_every=1000, stderr=subprocess.PIPE, extra=EVAL)
    try:
        run_dir = wait_for_run(announce, lambda d: _status(d).get("step", 0) >= 14 and (d / "checkpoints" / "best.pt").exists(),
                               "the 2-rank run with eval_every=4 did not get past its evaluations (hang?)", timeout=180)
        from core.runs import write_control
        write_control(run_dir, checkpoint=True)  # the studio's "Save checkpoint now"
        if not wait_for(lambda: any(e.get("type") == "checkpoint" and e.get("reason") == "requested"
                                    for e in _events(run_dir)), 120, every=0.5):
            pytest.fail("checkpoint-now was not honoured by the 2-rank run")
        write_control(run_dir, state="stopped")
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            kill_run(p, announce)
    assert p.returncode == 0, err[-3000:]
    status = _status(run_dir)
    assert status["state"] == "stopped", (status, err[-3000:])
    evals = [e for e in _events(run_dir) if e.get("type") == "metric"]
    assert len(evals) >= 3 and all(e["step"] % 4 <= 2 for e in evals), evals  # at each multiple of 4 (log_every 2)
    stop_step = status["step"]
    r = subprocess.run(torchrun("-m", "core", "resume", str(run_dir), "--steps", str(stop_step + 10), "--quiet"),
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    status = _status(run_dir)
    assert status["state"] == "finished" and status["step"] == stop_step + 10, status
    assert (run_dir / "checkpoints" / "best.pt").exists()
    assert any(e.get("type") == "metric" and e["step"] > stop_step for e in _events(run_dir))


def test_two_rank_run_with_a_minutes_budget_finishes_on_every_rank(tmp_path):
    p, announce = start_two_rank_run(tmp_path, checkpoint_every=1000, stderr=subprocess.PIPE,
                                     extra=(*EVAL, "--minutes", "0.2"))
    try:
        _, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            kill_run(p, announce)
    run_dir = Path(announce.read_text())
    assert p.returncode == 0, err[-3000:]
    status = _status(run_dir)
    assert status["state"] == "finished", (status, err[-3000:])
    assert "Time budget" in status.get("message", ""), status
    ckpts = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    assert ckpts and int(ckpts[-1].stem.split("_")[1]) == status["step"]
    assert any(e.get("type") == "metric" for e in _events(run_dir))
