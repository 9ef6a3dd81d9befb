"""Does watching slow training down? Throughput of ONE run with the Monitor page open vs no browser.

    python -m benchmarks.dashboard [--phase 60] [--device auto] [--out docs/benchmarks.md]

Starts the studio (run_studio.py) with a temporary runs folder, starts a run from the Train page in
headless Chromium, then alternates phases of equal length: Monitor open (live refresh every 2 s) /
browser closed / Monitor open / browser closed. Throughput per phase comes from the run's own
metrics.jsonl (images = steps x batch between the first and last row inside the phase). Prints a
Markdown table with the ratio (with browser / without). Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e import driver


def throughput(metrics: Path, t0: float, t1: float, batch: int) -> float | None:
    rows = []
    for line in metrics.read_text().splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r.get("time"), (int, float)) and t0 <= r["time"] <= t1 and isinstance(r.get("step"), int):
            rows.append((r["time"], r["step"]))
    if len(rows) < 2:
        return None
    (ta, sa), (tb, sb) = rows[0], rows[-1]
    return (sb - sa) * batch / (tb - ta) if tb > ta else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", type=float, default=60.0, help="seconds per phase")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", help="append the result to this Markdown file")
    args = ap.parse_args()
    if not driver.have_browser():
        print("needs playwright and /usr/bin/chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="gan-studio-bench-"))
    runs = tmp / "runs"
    phases: list[tuple[str, float, float]] = []
    with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(tmp / "cache")}) as url, sync_playwright() as pw:
        def open_browser():
            b = pw.chromium.launch(executable_path=driver.CHROMIUM, args=driver.CHROMIUM_ARGS)
            page = b.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            return b, page

        browser, page = open_browser()
        driver.open_app(page, url)
        driver.nav(page, "Train")
        driver.choose(page, "Resolution", f"{args.resolution} × {args.resolution}")
        for label, value in (("Generator width", args.width), ("Discriminator width", args.width),
                             ("Batch size", args.batch), ("Steps", 10_000_000), ("Log metrics every", 10),
                             ("Sample every", 200), ("Checkpoint every", 100_000)):
            driver.set_input(page, label, value)
        if args.device != "auto":
            driver.choose(page, "Device", args.device)
        driver.click(page, "Start training")
        page.get_by_role("heading", name="Monitor").first.wait_for()
        run = next(p for p in runs.iterdir() if p.is_dir())
        time.sleep(15)  # warm-up (first steps, data cache, autotuning)
        for i in range(4):
            with_browser = i % 2 == 0
            if with_browser and browser is None:
                browser, page = open_browser()
                page.goto(f"{url}/monitor?run={run.name}")
                page.get_by_role("heading", name="Monitor").first.wait_for()
            if not with_browser and browser is not None:
                browser.close()
                browser = None
            t0 = time.time()
            time.sleep(args.phase)
            phases.append(("Monitor open" if with_browser else "no browser", t0, time.time()))
        if browser is not None:
            browser.close()
        from core.runs import write_control
        write_control(run, state="stopped")
        time.sleep(3)
        status = json.loads((run / "status.json").read_text())
        metrics = run / "metrics.jsonl"
        res = [(name, throughput(metrics, t0, t1, args.batch)) for name, t0, t1 in phases]
    on = [v for n, v in res if n == "Monitor open" and v]
    off = [v for n, v in res if n == "no browser" and v]
    ratio = (sum(on) / len(on)) / (sum(off) / len(off)) if on and off else float("nan")
    cpu = f"{os.cpu_count()} logical CPUs, {platform.processor() or platform.machine()}"
    lines = [
        f"### Dashboard overhead — {time.strftime('%Y-%m-%d')} — device `{status.get('device')}` ({cpu})",
        "",
        f"One run (shapes, {args.resolution}px, widths {args.width}, batch {args.batch}), phases of {args.phase:.0f} s:",
        "",
        "| phase | images/s |",
        "|---|---|",
        *[f"| {n} | {v:,.1f} |" if v else f"| {n} | n/a |" for n, v in res],
        "",
        f"**Ratio (Monitor open / no browser): {ratio:.3f}**",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
