"""Measure an idle studio's CPU: server and browser, each page open with no run (docs/reliability.md).

    python -m tools.idle_cpu [--seconds 60] [--tree /tmp/big] [--pages data,train,...]

Starts run_studio.py on a free port (empty runs folder), opens headless Chromium at 1440x1000, and for
each page lets it settle, then reads the CPU seconds of the server's process tree and of the browser's
processes over ``--seconds`` (Linux /proc). With ``--tree``, the Data page first scans that folder
(one Enter in the path box, or a click on Scan for a studio that needs it) and is measured with the
scan report open. Not a test: the numbers depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

from core.bench.procstat import _children_of, _proc_cpu, machine_busy


def _load_driver():  # noqa: ANN202 - by file: an installed package named `tests` shadows ours
    path = Path(__file__).resolve().parents[1] / "tests" / "e2e" / "driver.py"
    spec = importlib.util.spec_from_file_location("gs_e2e_driver", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


driver = _load_driver()

PAGES = {"data": "Data", "train": "Train", "monitor": "Monitor", "runs": "Runs", "latent": "Latent explorer",
         "export": "Export"}


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _server_pid(port: int) -> int:
    for p in _children_of(os.getpid()):
        c = _cmd(p)
        if "streamlit" in c and f"{port}" in c:
            return p
    raise RuntimeError("streamlit server process not found")


def _cpu(pids: list[int]) -> float:
    return sum(_proc_cpu(p) for p in pids)


def measure(server: int, seconds: float) -> dict[str, float]:
    def browser() -> list[int]:
        return [p for p in _children_of(os.getpid()) if "chrom" in _cmd(p).split(" ", 1)[0]]

    srv = [server, *_children_of(server)]
    b = browser()
    s0, b0, m0, t0 = _cpu(srv), _cpu(b), machine_busy()[0], time.perf_counter()
    time.sleep(seconds)
    srv2 = [server, *_children_of(server)]
    wall = time.perf_counter() - t0
    return {"server": 100 * (_cpu(srv2) - s0) / wall, "browser": 100 * (_cpu(b) - b0) / wall,
            "machine": 100 * (machine_busy()[0] - m0) / wall}


def scan_tree(page, tree: str) -> None:  # noqa: ANN001
    page.get_by_text("Image folder", exact=True).first.click()
    driver.wait_idle(page)
    box = page.get_by_label("Image folder", exact=True).first
    box.click()
    box.fill(tree)
    box.press("Enter")
    deadline = time.monotonic() + 240
    clicked = False
    page.wait_for_timeout(3000)
    while time.monotonic() < deadline:
        if page.get_by_text("Usable images").count():
            break
        busy = page.locator('[data-testid="stProgress"]').count() > 0
        if not clicked and not busy:
            btn = page.get_by_role("button", name="Scan")
            if btn.count() and btn.first.is_enabled():
                btn.first.click()  # a studio where Enter only commits the text (#20 item 1)
                clicked = True
        page.wait_for_timeout(1000)
    else:
        page.screenshot(path="/tmp/gs-idle-scan-timeout.png")
        raise RuntimeError("the scan report did not appear (screenshot: /tmp/gs-idle-scan-timeout.png)")
    driver.wait_idle(page, timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=15.0, help="seconds to wait after opening a page")
    ap.add_argument("--tree", help="a folder to scan on the Data page before measuring it")
    ap.add_argument("--pages", default=",".join(PAGES))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gs-idle-"))
    port = driver.free_port()
    env = {"GAN_STUDIO_CACHE": str(tmp / "cache")}
    with driver.studio_server(tmp / "runs", port=port, env=env, log=tmp / "server.log") as url, \
            driver.browser_page(1440, 1000) as page:
        driver.open_app(page, url)
        server = _server_pid(port)
        if args.tree:
            t0 = time.perf_counter()
            scan_tree(page, args.tree)
            print(f"scanned {args.tree} in {time.perf_counter() - t0:.0f} s", flush=True)
            page.wait_for_timeout(int(args.settle * 1000))
            r = measure(server, args.seconds)
            print(f"data+tree  server {r['server']:5.1f} %  browser {r['browser']:5.1f} %  "
                  f"machine {r['machine']:5.1f} %", flush=True)
        for key in args.pages.split(","):
            if key == "data" and args.tree:
                continue
            driver.nav(page, PAGES[key])
            page.wait_for_timeout(int(args.settle * 1000))
            r = measure(server, args.seconds)
            print(f"{key:10s} server {r['server']:5.1f} %  browser {r['browser']:5.1f} %  "
                  f"machine {r['machine']:5.1f} %", flush=True)


if __name__ == "__main__":
    main()
