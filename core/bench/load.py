"""A competing CPU load for the speed benchmark, switched on and off between timed rounds."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import procstat


class Load:
    """A competing load switched on and off with SIGCONT/SIGSTOP between rounds.

    busy: one Python process spinning on one core (a browser tab busy rendering, a scan, ...).
    studio: the studio's Streamlit server + headless Chromium showing the Monitor page of a run.
    """

    def __init__(self, kind: str, run_dir: Path | None = None):
        self.kind, self.procs, self.on = kind, [], True
        if kind == "busy":
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True))
        elif kind == "studio":
            self._start_studio(run_dir)
        else:
            raise ValueError(f"unknown load {kind!r}; valid: busy, studio")
        procstat.EXCLUDE.update(p.pid for p in self.procs)  # their CPU time is the load's, not ours

    def _start_studio(self, run_dir: Path | None) -> None:
        import shutil
        import socket
        root = Path(__file__).resolve().parents[2]
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if browser is None:
            raise RuntimeError("--load studio needs chromium on PATH")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, GAN_STUDIO_RUNS_DIR=str(run_dir.parent if run_dir else Path("runs").resolve()),
                   PYTHONPATH=str(root))
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(root / "studio" / "app.py"), "--server.address",
             "127.0.0.1", "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType",
             "none", "--browser.gatherUsageStats", "false"], cwd=str(root), env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        url = f"http://localhost:{port}/monitor" + (f"?run={run_dir.name}" if run_dir else "")
        self.profile = tempfile.mkdtemp(prefix="gs-bench-chromium-")
        self.procs.append(subprocess.Popen(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0", url],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(15)  # let the page load and its live fragments start refreshing

    def set(self, on: int) -> None:
        if bool(on) == self.on:
            return
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGCONT if on else signal.SIGSTOP)
            except ProcessLookupError:
                pass
        self.on = bool(on)
        if on:
            time.sleep(0.3)  # let the load get going before the clock starts

    def close(self) -> None:
        self.set(1)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        procstat.EXCLUDE.difference_update(p.pid for p in self.procs)
        if getattr(self, "profile", None):
            import shutil
            shutil.rmtree(self.profile, ignore_errors=True)
