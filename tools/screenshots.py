"""Regenerate docs/screenshots/{data,train,monitor,runs}.png (1440x900) from a live studio.

    python -m tools.screenshots [--steps 600] [--keep RUNS_DIR]

Starts run_studio.py on a free port with a temporary runs folder, scans a small demo folder
(shapes exported as PNGs into class subfolders, plus a broken file and a text file) on the Data
page, configures a short run on the built-in `shapes` dataset on the Train page, starts it,
photographs the Monitor page while it trains, then the Runs page. Not a test.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from core.runs import load_run
from tools.test_modules import load

driver = load("e2e/driver.py")

OUT = driver.ROOT / "docs" / "screenshots"


def demo_folder(root: Path, per_class: int = 40) -> Path:
    import numpy as np
    from PIL import Image

    from core.data.builtin import SHAPE_CLASSES, make_shapes

    folder = root / "my-shapes"
    images, labels = make_shapes(per_class * len(SHAPE_CLASSES) * 2, 64)
    images = np.asarray(images)
    counts = {c: 0 for c in range(len(SHAPE_CLASSES))}
    for i, (img, lab) in enumerate(zip(images, np.asarray(labels))):
        lab = int(lab)
        if counts[lab] >= per_class:
            continue
        counts[lab] += 1
        d = folder / SHAPE_CLASSES[lab]
        d.mkdir(parents=True, exist_ok=True)
        arr = img.transpose(1, 2, 0) if img.shape[0] in (1, 3) else img
        Image.fromarray(arr.squeeze()).save(d / f"{SHAPE_CLASSES[lab]}_{i:04d}.png")
    good = next((folder / SHAPE_CLASSES[0]).glob("*.png")).read_bytes()
    (folder / SHAPE_CLASSES[1] / "half_downloaded.png").write_bytes(good[: len(good) // 2])
    (folder / SHAPE_CLASSES[2] / "tiny.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "README.txt").write_text("demo images for GAN Studio screenshots\n")
    return folder


def configure(page, steps: int) -> None:  # noqa: ANN001
    driver.set_input(page, "Dataset", "shapes")
    driver.choose(page, "Resolution", "32 × 32")
    for label, value in (("Generator width", 16), ("Discriminator width", 16), ("Batch size", 32),
                         ("Steps", steps), ("Sample every", max(10, steps // 12)), ("Log metrics every", 10),
                         ("Checkpoint every", max(50, steps // 2))):
        driver.set_input(page, label, value)


def wait_state(run: Path, states: tuple[str, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and load_run(run).state not in states:
        time.sleep(2)


def shoot(page, name: str) -> None:  # noqa: ANN001
    page.mouse.move(5, 890)  # no hover tooltips in the picture
    page.wait_for_timeout(600)
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"saved {OUT / f'{name}.png'}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--watch", type=float, default=240.0, help="at most this many seconds of training before "
                                                               "the Monitor shot (taken at 75%% of the steps)")
    ap.add_argument("--data-only", action="store_true", help="only redo data.png (no training)")
    ap.add_argument("--keep", help="use this runs folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    if not driver.have_browser():
        print("needs playwright and /usr/bin/chromium", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="gan-studio-shots-"))
    runs = Path(args.keep) if args.keep else tmp / "runs"
    try:
        folder = demo_folder(tmp)
        with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(tmp / "cache")},
                                  log=tmp / "server.log") as url, driver.browser_page() as page:
            driver.open_app(page, url)
            # Data: scan the demo folder
            page.get_by_text("Image folder", exact=True).first.click()
            driver.wait_idle(page)
            driver.set_input(page, "Image folder", folder)
            driver.click(page, "Scan")
            page.get_by_text("Real images").first.wait_for(timeout=120_000)
            driver.wait_idle(page)
            page.wait_for_timeout(800)
            shoot(page, "data")
            if args.data_only:
                return 0

            # Train: a short run on the built-in shapes
            driver.nav(page, "Train")
            configure(page, args.steps)
            page.get_by_text("Time per step").first.wait_for(timeout=60_000)
            driver.wait_idle(page)
            driver.scroll_top(page)
            shoot(page, "train")
            driver.click(page, "Start training")
            page.get_by_role("heading", name="Monitor").first.wait_for(timeout=120_000)
            run = max(p for p in runs.iterdir() if p.is_dir())
            deadline = time.monotonic() + args.watch
            while time.monotonic() < deadline and load_run(run).step < 0.75 * args.steps:
                page.wait_for_timeout(2000)
            page.wait_for_timeout(4500)  # one more chart refresh
            driver.wait_idle(page, timeout=10)
            shoot(page, "monitor")
            wait_state(run, ("finished", "stopped", "failed"), 600)

            # Fork it with a lower D learning rate, so the Runs page has a fork to compare.
            driver.nav(page, "Runs")
            page.get_by_role("button", name="Fork").first.click()  # the only run so far
            page.wait_for_timeout(800)
            pop = page.locator('[data-testid="stPopoverBody"]').last
            box = pop.get_by_label("Total steps", exact=True)
            box.fill(str(args.steps + args.steps // 3))
            box.press("Enter")
            driver.wait_idle(page)
            box = pop.get_by_label("D learning rate", exact=True)
            box.fill("0.0001")
            box.press("Enter")
            driver.wait_idle(page)
            pop.get_by_role("button", name="Start fork").click()
            page.get_by_role("heading", name="Monitor").first.wait_for(timeout=120_000)
            second = max(p for p in runs.iterdir() if p.is_dir())
            wait_state(second, ("finished", "stopped", "failed"), 600)
            driver.nav(page, "Runs")
            page.wait_for_timeout(2000)
            shoot(page, "runs")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
