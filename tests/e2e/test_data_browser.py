"""The Data page in a real browser (#20 items 1, 3, 6): one click on Scan or Enter scans, scanning only
looks until "Use for training", and a reload (F5) keeps the selection and the Train form."""
from __future__ import annotations

import driver
import pytest
from test_browser import make_folder, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not driver.have_browser(), reason="needs playwright and /usr/bin/chromium")]


def usable(page) -> str | None:  # noqa: ANN001
    m = page.locator('[data-testid="stMetric"]', has_text="Usable images")
    return m.first.locator('[data-testid="stMetricValue"]').inner_text() if m.count() else None


def test_one_click_or_enter_scans_and_reload_keeps_the_choice(tmp_path):
    first = make_folder(tmp_path / "a", n=12)
    second = make_folder(tmp_path / "b", n=9)
    with driver.studio_server(tmp_path / "runs", env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}) as url, \
            driver.browser_page(1440, 1000) as page:
        driver.open_app(page, url)
        page.get_by_text("Image folder", exact=True).first.click()
        driver.wait_idle(page)
        box = page.get_by_label("Image folder", exact=True).first
        box.click()
        box.fill(str(first))  # typed, not committed: no Enter, no blur before the click
        page.get_by_role("button", name="Scan").first.click()
        wait_until(page, lambda: usable(page) == "12", 60, "the report after one click on Scan")
        assert page.get_by_text("Looking only").count() == 1  # scanning selects nothing

        box.click()
        box.fill(str(second))
        box.press("Enter")
        wait_until(page, lambda: usable(page) == "9", 60, "the report after Enter")
        driver.wait_idle(page)

        page.get_by_role("button", name="Use for training").first.click()
        driver.wait_idle(page)
        wait_until(page, lambda: page.get_by_text("is selected for training").count() > 0, 60, "the selection")
        driver.nav(page, "Train")
        driver.set_input(page, "Batch size", 24)

        page.reload()  # F5: a new session
        page.get_by_role("heading", name="Train").first.wait_for()
        page.get_by_label("Dataset", exact=True).first.wait_for()
        driver.wait_idle(page)
        assert page.get_by_label("Dataset", exact=True).first.input_value() == str(second.resolve())
        assert page.get_by_label("Batch size", exact=True).first.input_value() == "24"
