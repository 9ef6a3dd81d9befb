"""A laptop screen in a real browser (#20 item 13): at 1024x768 the sidebar starts folded, labels, toggles and
buttons are not cut, the Runs card's actions fit; the Monitor's keyboard shortcuts (space, arrows); dark mode."""
from __future__ import annotations

import json
from pathlib import Path

import driver
import pytest
from test_browser import wait_until
from test_studio_app import make_run  # tests/ is on pytest's pythonpath (pyproject.toml)

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not driver.have_browser(), reason="needs playwright and /usr/bin/chromium")]

# Text elements cut by their box (an ellipsis or clipped): metric labels, toggles, checkboxes, buttons.
CUT_JS = """() => {
  const sel = '[data-testid="stMetricLabel"] p, [data-testid="stWidgetLabel"] p, label[data-baseweb] p,'
            + ' [data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p,'
            + ' [data-testid="stPopoverButton"] p, [data-testid="stMarkdownContainer"] p';
  return [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null && e.clientWidth > 0
           && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.slice(0, 40));
}"""
BACKGROUND_JS = "() => getComputedStyle(document.querySelector('.stApp')).backgroundColor.match(/\\d+/g).map(Number)"
SIDEBAR_FOLDED_JS = "() => document.querySelector('[data-testid=\"stSidebar\"]').getAttribute('data-collapsed')"


def _runs(root: Path) -> Path:
    root.mkdir()
    make_run(root, "00000-dcgan-bce-shapes")
    p = make_run(root, "00001-dcgan-hinge-shapes", state="running", steps=400)
    for s in (150, 200):
        from test_studio_app import png
        png(p / "samples" / f"step_{s:07d}.png", color=(200, 40, s % 255))
    return p


def test_laptop_screen_fits_and_shortcuts(tmp_path):
    root = tmp_path / "runs"
    live = _runs(root)
    with driver.studio_server(root, env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}) as url, \
            driver.browser_page(1024, 768) as page:
        driver.open_app(page, url)
        wait_until(page, lambda: page.evaluate(SIDEBAR_FOLDED_JS) == "true", 10, "the sidebar to fold at 1024 px")
        for title in ("Runs", "Monitor"):
            page.goto(f"{url}/{title.lower()}")
            page.get_by_role("heading", name=title).first.wait_for()
            driver.wait_idle(page)
            page.wait_for_timeout(3000)
            page.screenshot(path=str(tmp_path / f"{title}.png"), full_page=True)
            cut = page.evaluate(CUT_JS)
            assert not cut, (title, cut)

        # Monitor (the running run is newest, shown first): ← moves back through the grids, space pauses.
        grid = page.locator("h5", has_text="Generated")
        wait_until(page, lambda: "step 200" in grid.first.inner_text(), 20, "the latest grid")
        page.locator("h1").first.click()  # keys go to the page, not to a field
        page.keyboard.press("ArrowLeft")
        wait_until(page, lambda: "step 150" in grid.first.inner_text(), 15, "ArrowLeft to show the previous grid")
        page.keyboard.press("ArrowLeft")
        wait_until(page, lambda: "step 100" in grid.first.inner_text(), 15, "a second ArrowLeft")
        page.keyboard.press(" ")
        wait_until(page, lambda: (live / "control.json").exists()
                   and json.loads((live / "control.json").read_text()).get("state") == "paused", 15,
                   "space to ask the run to pause")
        assert page.title().startswith("50% · 00001-dcgan-hinge-shapes")  # the tab shows the run's progress

    with driver.studio_server(root, env={"GAN_STUDIO_CACHE": str(tmp_path / "cache")}) as url, \
            driver.browser_page(1440, 900) as page:
        driver.open_app(page, url)
        page.wait_for_timeout(1500)
        assert page.evaluate(SIDEBAR_FOLDED_JS) == "false"
        page.emulate_media(color_scheme="dark")  # the browser prefers dark: so does the studio
        page.reload()
        page.get_by_role("heading", name="Data").first.wait_for()
        wait_until(page, lambda: page.evaluate(BACKGROUND_JS)[0] < 60, 10, "the dark theme")
