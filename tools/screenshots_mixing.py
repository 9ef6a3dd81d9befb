"""Regenerate docs/screenshots/latent_mixing.png: the Latent explorer's style-mixing grid of a stylegan2 run.

    python -m tools.screenshots_mixing RUNS_DIR

RUNS_DIR must hold a trained stylegan2 run (e.g. `python -m core train --preset stylegan2-small --minutes 7
--runs-dir RUNS_DIR`); its newest checkpoint is shown. Not a test.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")

OUT = driver.ROOT / "docs" / "screenshots" / "latent_mixing.png"


def main(runs_dir: str, group: str = "coarse") -> None:
    with driver.studio_server(Path(runs_dir)) as url, driver.browser_page(1440, 1800) as page:
        driver.open_app(page, url)
        driver.nav(page, "Latent explorer")
        page.get_by_role("tab", name="Style mixing").first.click()
        driver.wait_idle(page)
        if group != "coarse":
            page.get_by_text(group, exact=False).first.click()
            driver.wait_idle(page)
        page.get_by_text("Download mixing grid").first.wait_for(timeout=60_000)
        tabs = page.locator('[data-testid="stTabs"]').first
        tabs.scroll_into_view_if_needed()
        page.wait_for_timeout(2000)  # the tiles finish drawing
        tabs.screenshot(path=str(OUT))
        print("wrote", OUT)


if __name__ == "__main__":
    main(*sys.argv[1:])
