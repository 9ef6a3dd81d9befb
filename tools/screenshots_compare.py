"""Photograph the Runs page's Compare section at 1440×1000 and 1024×768.

    python -m tools.screenshots_compare RUNS_DIR [OUT_DIR]

RUNS_DIR should hold two or more runs with quality evaluations (e.g. two `python -m core train --data shapes
--loss bce|hinge --set eval_every=80` runs). Clicks 'Show the real-vs-real SWD' when offered and writes
compare_<width>.png to OUT_DIR (default /tmp/compare_shots), copied to docs/screenshots/compare.png and
compare_1024.png. Not a test.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")


def shoot(url: str, width: int, height: int, out: Path) -> None:
    """A tall window (so the whole section is drawn), cropped to the Compare section, one screen high and more."""
    from PIL import Image

    with driver.browser_page(width, 3200) as page:
        driver.open_app(page, url)
        page.goto(url.rstrip("/") + "/runs")
        driver.wait_idle(page)
        base = page.get_by_role("button", name="Show the real-vs-real SWD")
        if base.count():
            base.first.dispatch_event("click")
            driver.wait_idle(page)
        page.mouse.move(width - 5, 5)
        page.wait_for_timeout(2000)
        top = page.get_by_text("Compare runs", exact=True).first.bounding_box()["y"] - 10
        raw = out / f"compare_{width}_raw.png"
        page.screenshot(path=str(raw))
    with Image.open(raw) as im:
        im.crop((0, int(top), width, min(im.height, int(top) + int(height * 1.3)))).save(out / f"compare_{width}.png")
    print("wrote", out / f"compare_{width}.png")


def main(runs_dir: str, out_dir: str = "/tmp/compare_shots") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with driver.studio_server(Path(runs_dir)) as url:
        for w, h in ((1440, 1000), (1024, 768)):
            shoot(url, w, h, out)
    docs = driver.ROOT / "docs" / "screenshots"
    shutil.copyfile(out / "compare_1440.png", docs / "compare.png")
    shutil.copyfile(out / "compare_1024.png", docs / "compare_1024.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
