"""Photograph the Latent explorer at 1440×1000 and 1024×768 with pins, an edit and nearest neighbours shown.

    python -m tools.screenshots_latent RUNS_DIR [OUT_DIR]

RUNS_DIR must hold a trained run (e.g. `python -m core train --data fashion-mnist --minutes 5 --runs-dir
RUNS_DIR`). Writes latent_<width>.png (the page's top after pinning seeds 3 and 5 and paging on),
latent_<width>_<tab>.png per tab and latent_<width>_pinned.png to OUT_DIR (default /tmp/latent_shots), and
copies the two page views to docs/screenshots/latent.png and latent_1024.png. Not a test.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")

TABS = {"interp": "Interpolate & animate", "edit": "Edit", "nearest": "Nearest training images"}


def shoot(url: str, width: int, height: int, out: Path) -> None:
    with driver.browser_page(width, height) as page:
        driver.open_app(page, url)
        driver.nav(page, "Latent explorer")
        for key in ("lat_pin_3", "lat_pin_5"):
            page.locator(f".st-key-{key} button").first.click()
            driver.wait_idle(page)
        page.get_by_role("button", name="Next page").first.click()
        driver.wait_idle(page)
        page.mouse.move(width - 5, 5)  # no tooltip of whatever the page moved under the pointer
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / f"latent_{width}.png"), full_page=True)
        page.screenshot(path=str(out / f"latent_{width}_top.png"))
        for name, tab in TABS.items():
            page.get_by_role("tab", name=tab).first.click()
            driver.wait_idle(page)
            if name == "edit":
                page.locator(".st-key-lat_pc_0").first.wait_for(timeout=120_000)  # PCA runs once per checkpoint
                knob = page.locator(".st-key-lat_pc_0 input[type=range]").first
                knob.focus()
                for _ in range(15):
                    knob.press("ArrowRight")
                driver.wait_idle(page)
                page.get_by_role("button", name="Pin edit").first.click()
                driver.wait_idle(page)
                page.get_by_role("tab", name=tab).first.click()
                driver.wait_idle(page)
            elif name == "nearest":
                page.get_by_role("button", name="Find").first.click()
                driver.wait_idle(page)
            page.mouse.move(width - 5, 5)
            page.wait_for_timeout(1500)
            tabs = page.locator('[data-testid="stTabs"]').first
            tabs.scroll_into_view_if_needed()
            tabs.screenshot(path=str(out / f"latent_{width}_{name}.png"))
        strip = page.get_by_text("Pinned", exact=True).first
        strip.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / f"latent_{width}_pinned.png"))
        print("wrote", out / f"latent_{width}*.png")


def main(runs_dir: str, out_dir: str = "/tmp/latent_shots") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with driver.studio_server(Path(runs_dir)) as url:
        for w, h in ((1440, 1000), (1024, 768)):
            shoot(url, w, h, out)
    docs = driver.ROOT / "docs" / "screenshots"
    shutil.copyfile(out / "latent_1440.png", docs / "latent.png")
    shutil.copyfile(out / "latent_1024.png", docs / "latent_1024.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
