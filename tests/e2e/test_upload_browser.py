"""Upload in a real browser (#18): a zip dropped on the Data page lands under runs/uploads, is scanned, and trains."""
from __future__ import annotations

import io
import zipfile

import driver
import pytest
from test_browser import make_folder, wait_until
from test_data_browser import usable

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not driver.have_browser(), reason="needs playwright and /usr/bin/chromium")]


def test_a_zip_upload_is_scanned_and_selectable(tmp_path):
    src = make_folder(tmp_path / "src", n=12)
    zpath = tmp_path / "pictures.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(src.rglob("*.png")):
            z.write(p, p.name)
    zpath.write_bytes(buf.getvalue())
    runs = tmp_path / "runs"
    with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}) as url, \
            driver.browser_page(1440, 1000) as page:
        driver.open_app(page, url)
        page.get_by_text("Image folder", exact=True).first.click()
        driver.wait_idle(page)
        page.get_by_text("Upload images or a .zip", exact=False).first.click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(zpath))
        wait_until(page, lambda: page.get_by_text("pictures.zip").count() > 0, 60, "the file listed")
        driver.wait_idle(page)
        page.get_by_role("button", name="Upload and scan").first.click()
        wait_until(page, lambda: usable(page) == "12", 90, "the report of the uploaded folder")
        assert len(list((runs / "uploads").rglob("*.png"))) == 12
        page.get_by_role("button", name="Use for training").first.click()
        wait_until(page, lambda: page.get_by_text("is selected for training").count() > 0, 60, "the selection")
