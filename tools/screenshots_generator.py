"""Regenerate docs/screenshots/{latent,export,monitor_trained}.png from an existing runs folder.

    python -m tools.screenshots_generator RUNS_DIR

Points the studio at a runs folder that already holds a trained run (e.g. the one
`python -m core bench quality` leaves in runs/bench) and photographs the Latent explorer, the
Export page and that run's Monitor page. Not a test.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")

OUT = driver.ROOT / "docs" / "screenshots"


def main(runs_dir: str) -> None:
    with driver.studio_server(Path(runs_dir)) as url, driver.browser_page(1440, 900) as page:
        driver.open_app(page, url)
        for title, name, full in (("Latent explorer", "latent", True), ("Export", "export", False),
                                  ("Monitor", "monitor_trained", False)):
            driver.nav(page, title)
            page.wait_for_timeout(2500)  # images and charts finish drawing
            driver.wait_idle(page)
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
            print("wrote", OUT / f"{name}.png")


if __name__ == "__main__":
    main(sys.argv[1])
