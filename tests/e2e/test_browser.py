"""End to end in a real browser: run_studio.py + headless Chromium (system package) + Playwright.

Data page: scan a folder of 32 PNGs -> Train page: tiny config, Start -> Monitor: the loss chart
gains points and a sample grid appears -> Stop -> the state becomes Stopped.
"""
from __future__ import annotations

import time
from pathlib import Path

import driver
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not driver.have_browser(), reason="needs playwright and /usr/bin/chromium")]


def make_folder(root: Path, n: int = 32) -> Path:
    from PIL import Image, ImageDraw

    folder = root / "my images"
    folder.mkdir(parents=True)
    for i in range(n):
        im = Image.new("RGB", (40, 40), (240, 240, 240))
        d = ImageDraw.Draw(im)
        c = (40 + 6 * i, 90, 200 - 5 * i)
        if i % 2:
            d.ellipse((8, 8, 32, 32), fill=c)
        else:
            d.rectangle((10, 10, 30, 30), fill=c)
        im.save(folder / f"img_{i:02d}.png")
    return folder


def plot_points(page) -> int:  # noqa: ANN001
    """Points in the first trace of the loss chart, 0 if none yet. Found by its title: once the run
    has an evaluation, the sample-quality chart is drawn first."""
    return page.evaluate("""() => {
        const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
        const title = el => ((el.layout || {}).title || {}).text || '';
        const el = plots.find(p => title(p).includes('Losses'));
        if (!el || !el.calcdata || !el.calcdata.length) return 0;
        return el.calcdata[0].length || 0;
    }""")


def wait_until(page, cond, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out waiting for {what}")


def test_scan_train_watch_stop(tmp_path):
    folder = make_folder(tmp_path)
    runs = tmp_path / "runs"
    log = tmp_path / "server.log"
    with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}, log=log) as url, \
            driver.browser_page() as page:
        try:
            driver.open_app(page, url)

            # Data: scan the folder
            page.get_by_text("Image folder", exact=True).first.click()
            driver.wait_idle(page)
            driver.set_input(page, "Image folder", folder)
            driver.click(page, "Scan")
            usable = page.locator('[data-testid="stMetric"]', has_text="Usable images")
            usable.first.wait_for(timeout=60_000)
            assert "32" in usable.first.inner_text()
            driver.click(page, "Use for training")  # scanning only looks (#20 item 6)

            # Train: the folder is pre-filled; make the run tiny (and long: the test stops it; a short
            # run on a fast machine would finish before the chart is seen to grow)
            driver.nav(page, "Train")
            assert page.get_by_label("Dataset", exact=True).first.input_value() == str(folder)
            driver.choose(page, "Resolution", "16 × 16")
            for label, value in (("Latent size (z)", 16), ("Generator width", 8), ("Discriminator width", 8),
                                 ("Batch size", 8), ("Steps", 1_000_000), ("Sample every", 20),
                                 ("Log metrics every", 5)):
                driver.set_input(page, label, value)
            driver.click(page, "Start training")

            # Monitor: the loss chart gains points, a sample grid appears
            page.get_by_role("heading", name="Monitor").first.wait_for(timeout=60_000)
            wait_until(page, lambda: plot_points(page) > 0, 90, "the loss chart")
            first = plot_points(page)
            wait_until(page, lambda: plot_points(page) > first, 60, "the loss chart to gain points")
            page.get_by_text("Generated · step").first.wait_for(timeout=60_000)
            assert page.locator('[data-testid="stImage"] img').count() >= 1

            # Stop: the state becomes Stopped
            driver.click(page, "Stop")
            wait_until(page, lambda: "Stopped" in page.locator("body").inner_text(), 60, "the Stopped state")
            assert runs.is_dir() and len([p for p in runs.iterdir() if p.is_dir()]) == 1
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            print(log.read_text(errors="replace")[-4000:])
            raise
