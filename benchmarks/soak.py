"""Soak the studio: one CPU run trained by the server with the Monitor page open in headless Chromium,
sampling the server's memory, open files and threads; then three browser sessions watch the same run
and one of them pauses it. Not a test: numbers for docs/reliability.md.

    python -m benchmarks.soak [--minutes 60] [--every 30] [--sessions 3]

Needs Playwright and the system Chromium (see tests/e2e/driver.py). Prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from core.runs import list_runs, load_run
from tests.e2e import driver

ROOT = Path(__file__).resolve().parents[1]


def proc_stats(pid: int) -> dict:
    st = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "Threads"):
            st[k] = int(v.split()[0])
    return {"rss_mb": round(st["VmRSS"] / 1024, 1), "threads": st["Threads"],
            "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}


def streamlit_pid(port: int) -> int:
    """The process listening on the port (the streamlit server, a child of run_studio.py)."""
    import glob
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for ln in Path(table).read_text().splitlines()[1:]:
            f = ln.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inode = f[9]
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if Path(fd).readlink().as_posix() == f"socket:[{inode}]":
                return int(fd.split("/")[2])
        except OSError:
            continue
    raise RuntimeError("server process not found")


def start_run(page) -> None:
    driver.nav(page, "Train")
    driver.choose(page, "Resolution", "16 × 16")
    for label, value in (("Latent size (z)", 16), ("Generator width", 8), ("Discriminator width", 8),
                         ("Batch size", 8), ("Steps", 1_000_000), ("Sample every", 200), ("Log metrics every", 10)):
        driver.set_input(page, label, value)
    driver.click(page, "Start training")
    page.get_by_role("heading", name="Monitor").first.wait_for(timeout=60_000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--every", type=float, default=30)
    ap.add_argument("--sessions", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gs-soak-"))
    runs, port = tmp / "runs", driver.free_port()
    samples, out = [], {}
    with driver.studio_server(runs, port=port, env={"GAN_STUDIO_CACHE": str(tmp / "cache")},
                              log=tmp / "server.log") as url, driver.browser_page() as page:
        pid = streamlit_pid(port)
        driver.open_app(page, url)
        samples.append({"t_s": 0, "step": 0, **proc_stats(pid), "phase": "idle, page open"})
        start_run(page)
        run = list_runs(runs)[0].path
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.minutes * 60:
            time.sleep(a.every)
            info = load_run(run)
            samples.append({"t_s": round(time.monotonic() - t0), "step": info.step, "state": info.state,
                            **proc_stats(pid)})
            print(json.dumps(samples[-1]), flush=True)
        # responsiveness after the soak: a page switch and back
        t = time.monotonic()
        driver.nav(page, "Runs")
        driver.nav(page, "Monitor")
        out["page_switch_after_soak_s"] = round(time.monotonic() - t, 2)
        # several sessions on one run: pause from the first, the others must show it
        others = []
        browser = page.context.browser
        for _ in range(a.sessions - 1):
            ctx = browser.new_context(viewport={"width": 1440, "height": 900})
            p = ctx.new_page()
            p.set_default_timeout(60_000)
            p.goto(f"{url}/monitor?run={run.name}")
            p.get_by_role("heading", name="Monitor").first.wait_for()
            driver.wait_idle(p)
            others.append(p)
        samples.append({"t_s": round(time.monotonic() - t0), "phase": f"{a.sessions} sessions", **proc_stats(pid)})
        t = time.monotonic()
        driver.click(page, "Pause")
        # Poll every session in turn (round robin), so each one's time is its own, not the sum.
        seen: list[float | None] = [None] * len(others)
        deadline = time.monotonic() + 60
        paused_on_disk = None  # when status.json said paused: the trainer's part of the delay
        while time.monotonic() < deadline and None in seen:
            if paused_on_disk is None and load_run(run).state == "paused":
                paused_on_disk = round(time.monotonic() - t, 2)
            for i, p in enumerate(others):
                if seen[i] is None and "Paused" in p.locator("body").inner_text():
                    seen[i] = round(time.monotonic() - t, 2)
            time.sleep(0.1)
        out["pause_seen_by_other_sessions_s"] = seen
        out["paused_in_status_json_s"] = paused_on_disk
        out["state_after_pause"] = load_run(run).state
        driver.click(page, "Stop")
        time.sleep(3)
        out["final_state"] = load_run(run).state
        samples.append({"t_s": round(time.monotonic() - t0), "phase": "stopped", **proc_stats(pid)})
    out["samples"] = samples
    base = [s for s in samples if "step" in s and s.get("step")]
    if base:
        out["rss_start_mb"], out["rss_end_mb"] = base[0]["rss_mb"], base[-1]["rss_mb"]
        out["fds_start"], out["fds_end"] = base[0]["fds"], base[-1]["fds"]
        out["threads_start"], out["threads_end"] = base[0]["threads"], base[-1]["threads"]
        out["steps"] = base[-1]["step"]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
