"""Does a long-lived live Monitor tab get slower? One server-trained run, the Monitor open and live;
every minute the tab's JS heap and the server's RSS/threads/fds, and page-switch times at the start,
at the end in the same tab, and in a fresh tab. Not a test: numbers for docs/reliability.md.

    python -m benchmarks.tab_age [--minutes 15]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.soak import proc_stats, start_run, streamlit_pid
from tests.e2e import driver

ROOT = Path(__file__).resolve().parents[1]


def switch(page) -> float:
    t = time.monotonic()
    driver.nav(page, "Runs")
    driver.nav(page, "Monitor")
    return round(time.monotonic() - t, 2)


def heap_mb(page) -> float:
    return round(page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : -1"), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=15)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gs-tabage-"))
    port = driver.free_port()
    with driver.studio_server(tmp / "runs", port=port, env={"GAN_STUDIO_CACHE": str(tmp / "cache")}) as url, \
            driver.browser_page() as page:
        pid = streamlit_pid(port)
        driver.open_app(page, url)
        start_run(page)
        time.sleep(60)
        print("1 min: switch", switch(page), "s, heap", heap_mb(page), "MB", proc_stats(pid), flush=True)
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.minutes * 60:
            time.sleep(60)
            print(f"{(time.monotonic() - t0) / 60:.0f} min: heap {heap_mb(page)} MB", proc_stats(pid), flush=True)
        print("end, same tab: switch", switch(page), "s, heap", heap_mb(page), "MB", flush=True)
        ctx = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
        fresh = ctx.new_page()
        fresh.set_default_timeout(60_000)
        driver.open_app(fresh, url)
        driver.nav(fresh, "Monitor")
        print("end, fresh tab: switch", switch(fresh), "s, heap", heap_mb(fresh), "MB", flush=True)


if __name__ == "__main__":
    main()
