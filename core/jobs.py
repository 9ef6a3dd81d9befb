"""JobManager: at most one training thread per device, controlled through the run folder's control.json."""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .runs import load_run, write_control
from .train.device import pick_device
from .train.session import run_training
from .train.setup import create_run, fork_run, resume_run
from .train.trainer import Trainer


class JobBusy(RuntimeError):
    """A job is already active on the device asked for (the message names its run)."""


@dataclass
class Job:
    run_dir: Path
    device: str
    thread: threading.Thread | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    final_state: str | None = None
    error: str | None = None
    proc: subprocess.Popen | None = None  # a torchrun job, when launched as a subprocess
    nproc: int = 1

    @property
    def state(self) -> str:
        if self.final_state:
            return self.final_state
        return load_run(self.run_dir).state

    def join(self, timeout: float | None = None) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        elif self.thread is not None:
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.thread is not None and self.thread.is_alive()


_MANAGERS: weakref.WeakSet[JobManager] = weakref.WeakSet()


class JobManager:
    """Process-wide owner of training threads (the studio holds one in ``st.cache_resource``).

    Threads are daemons and are stopped and joined at interpreter exit, so the server shuts
    down promptly on SIGTERM and every run ends with a final checkpoint and state.
    """

    def __init__(self, runs_dir: str | Path, shared_cpu: bool = True):
        self.runs_dir = Path(runs_dir).expanduser()
        self.shared_cpu = shared_cpu
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._pending: set[str] = set()
        _MANAGERS.add(self)

    # ---------------------------------------------------------------- queries
    def active(self, device: str | None = None) -> Job | None:
        with self._lock:
            for dev, job in self._jobs.items():
                if job.alive and (device is None or dev == device):
                    return job
        return None

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def job_for(self, run_dir: str | Path) -> Job | None:
        p = Path(run_dir).resolve()
        with self._lock:
            for job in self._jobs.values():
                if job.run_dir.resolve() == p:
                    return job
        return None

    # ---------------------------------------------------------------- starting
    def start(self, cfg: TrainConfig, progress: Callable[[int, int], None] | None = None) -> Path:
        """Validate, load the data, create the run and start its thread. Raises JobBusy when the
        device already trains (a second click or tab never starts a duplicate)."""
        cfg = cfg.validate()
        return self._launch(str(pick_device(cfg.device)),
                            lambda: create_run(cfg, self.runs_dir, progress=progress, shared_cpu=self.shared_cpu))

    def resume(self, run_dir: str | Path, steps: int | None = None, minutes: float | None = None) -> Path:
        info = load_run(run_dir)
        dev = str(pick_device(info.config.get("device", "auto"))) if info.config else "cpu"
        return self._launch(dev, lambda: resume_run(run_dir, steps=steps, minutes=minutes, shared_cpu=self.shared_cpu))

    def fork(self, run_dir: str | Path, changes: dict[str, Any]) -> Path:
        info = load_run(run_dir)
        dev = str(pick_device(changes.get("device", info.config.get("device", "auto"))))
        return self._launch(dev, lambda: fork_run(run_dir, changes, self.runs_dir, shared_cpu=self.shared_cpu))

    def start_torchrun(self, cfg: TrainConfig, nproc: int, timeout: float = 600.0) -> Path:
        """Launch ``torchrun --nproc-per-node N -m core train`` (DDP: one process per GPU, or gloo
        processes on a CPU) and return its run folder once rank 0 has created it. Pause, stop and
        checkpoint go through control.json like any run."""
        cfg = cfg.validate()
        if nproc < 1:
            raise ValueError("nproc must be at least 1")
        device = str(pick_device(cfg.device))
        self._reserve(device)
        try:
            launch = self.runs_dir / ".launch"
            launch.mkdir(parents=True, exist_ok=True)
            tag = uuid.uuid4().hex[:8]
            cfg_file, announce, log = (launch / f"{tag}.json", launch / f"{tag}.run", launch / f"{tag}.log")
            cfg_file.write_text(json.dumps(cfg.to_dict()))
            # A short monitor interval: torchrun's agent otherwise takes seconds to notice its workers ended.
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--monitor-interval", "0.5",
                   "--nproc-per-node", str(nproc),
                   "-m", "core", "train", "--config", str(cfg_file), "--runs-dir", str(self.runs_dir),
                   "--announce", str(announce), "--quiet"]
            env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            root = str(Path(__file__).resolve().parent.parent)
            env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
            with open(log, "wb") as logf:
                proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=root,
                                        start_new_session=True)
            end = time.time() + timeout
            while not announce.exists():
                if proc.poll() is not None:
                    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                    errs = [ln for ln in tail if ln.startswith("error:")]
                    raise RuntimeError("the torchrun job ended before creating its run: "
                                       + (errs[-1] if errs else " | ".join(tail)))
                if time.time() > end:
                    proc.terminate()
                    raise RuntimeError(f"the torchrun job created no run folder within {timeout:.0f} s; see {log}")
                time.sleep(0.2)
            job = Job(run_dir=Path(announce.read_text()), device=device, proc=proc, nproc=nproc)
            for f in (cfg_file, announce):  # the run folder now holds the config; the log stays for debugging
                f.unlink(missing_ok=True)
            with self._lock:
                self._jobs[device] = job
            return job.run_dir
        finally:
            with self._lock:
                self._pending.discard(device)

    def _reserve(self, device: str) -> None:
        with self._lock:
            cur = self._jobs.get(device)
            if (cur is not None and cur.alive) or device in self._pending:
                where = cur.run_dir.name if cur is not None and cur.alive else "a run that is starting"
                raise JobBusy(f"{device} is already training {where}; stop it first or wait for it to finish")
            self._pending.add(device)

    def _launch(self, device: str, make: Callable[[], Trainer]) -> Path:
        self._reserve(device)
        try:
            trainer = make()  # data loading happens here, outside the lock, but the device is reserved
            job = Job(run_dir=trainer.store.path, device=device)
            job.thread = threading.Thread(target=self._work, args=(job, trainer), daemon=True,
                                          name=f"train-{trainer.store.path.name}")
            with self._lock:
                self._jobs[device] = job
            job.thread.start()
            return job.run_dir
        finally:
            with self._lock:
                self._pending.discard(device)

    @staticmethod
    def _work(job: Job, trainer: Trainer) -> None:
        try:
            job.final_state = run_training(trainer, should_stop=job.stop_event.is_set)
        except BaseException as e:  # pragma: no cover - run() already turns failures into states
            job.final_state, job.error = "failed", f"{type(e).__name__}: {e}"
        if job.final_state in ("failed", "diverged") and not job.error:
            job.error = load_run(job.run_dir).last_error()

    # ---------------------------------------------------------------- control
    def _target(self, run_dir: str | Path | None) -> Path | None:
        if run_dir is not None:
            return Path(run_dir)
        job = self.active()
        return job.run_dir if job else None

    def pause(self, run_dir: str | Path | None = None) -> None:
        if (p := self._target(run_dir)) is not None:
            write_control(p, state="paused")

    def unpause(self, run_dir: str | Path | None = None) -> None:
        if (p := self._target(run_dir)) is not None:
            write_control(p, state="running")

    def checkpoint_now(self, run_dir: str | Path | None = None) -> None:
        if (p := self._target(run_dir)) is not None:
            write_control(p, checkpoint=True)

    def stop(self, run_dir: str | Path | None = None, wait: bool = False, timeout: float = 60.0) -> None:
        p = self._target(run_dir)
        if p is None:
            return
        write_control(p, state="stopped")  # also reaches runs trained by another process
        job = self.job_for(p)
        if job is not None:
            job.stop_event.set()
            if wait:
                job.join(timeout)

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every job this manager started (threads and torchrun jobs) and wait for them."""
        for job in self.jobs():
            if job.alive:
                job.stop_event.set()
                if job.proc is not None:
                    write_control(job.run_dir, state="stopped")
        for job in self.jobs():
            job.join(timeout)


@atexit.register
def _shutdown_all() -> None:
    for m in list(_MANAGERS):
        m.shutdown(timeout=30.0)
