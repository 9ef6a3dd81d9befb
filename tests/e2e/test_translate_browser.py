"""pix2pix in a real browser (#17): scan a paired folder, start a short run from the Train page's Task field,
and see the Monitor's first input → output → target grid and live loss charts."""
from __future__ import annotations

from pathlib import Path

import driver
import pytest
from test_browser import plot_points, wait_until
from translate_data import make_paired  # tests/ is on sys.path (its conftest.py)

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not driver.have_browser(), reason="needs playwright and /usr/bin/chromium")]


def test_short_pix2pix_run_shows_its_triplet_grid_and_charts(tmp_path):
    folder = make_paired(tmp_path / "pairs", n=12, size=20)
    runs = tmp_path / "runs"
    log = tmp_path / "server.log"
    with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}, log=log) as url, \
            driver.browser_page(1440, 1000) as page:
        try:
            driver.open_app(page, url)
            page.get_by_text("Image folder", exact=True).first.click()
            driver.wait_idle(page)
            driver.set_input(page, "Image folder", folder)
            driver.click(page, "Scan")
            wait_until(page, lambda: page.get_by_text("pix2pix", exact=False).count() > 0, 60, "the paired layout")
            driver.click(page, "Use for training")

            driver.nav(page, "Train")
            assert page.get_by_label("Dataset", exact=True).first.input_value() == str(folder)
            driver.open_group(page, "Translation")
            # "Use for training" on a paired folder set Task to pix2pix (the run's name and grid say so below)
            driver.choose(page, "Resolution", "16 × 16")
            for label, value in (("Generator width", 8), ("Discriminator width", 8), ("Batch size", 4),
                                 ("Steps", 1_000_000), ("Sample every", 10), ("Log metrics every", 5)):
                driver.set_input(page, label, value)
            driver.click(page, "Start training")

            page.get_by_role("heading", name="Monitor").first.wait_for(timeout=60_000)
            wait_until(page, lambda: plot_points(page) > 0, 90, "the loss chart")
            first = plot_points(page)
            wait_until(page, lambda: plot_points(page) > first, 60, "the loss chart to gain points")
            wait_until(page, lambda: page.get_by_text("Input → output → target · step").count() > 0, 60,
                       "the first triplet grid")
            assert page.locator('[data-testid="stImage"] img').count() >= 1
            page.screenshot(path=str(tmp_path / "monitor.png"), full_page=True)
            (Path("/tmp") / "translate-monitor.png").write_bytes((tmp_path / "monitor.png").read_bytes())

            driver.click(page, "Stop")
            wait_until(page, lambda: "Stopped" in page.locator("body").inner_text(), 60, "the Stopped state")
            (run,) = [p for p in runs.iterdir() if p.is_dir()]
            assert run.name.endswith("pix2pix-pairs") and list((run / "samples").glob("step_*.png"))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            (Path("/tmp") / "translate-failure.png").write_bytes((tmp_path / "failure.png").read_bytes())
            print(log.read_text(errors="replace")[-4000:])
            raise
