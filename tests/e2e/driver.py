"""Helpers to drive GAN Studio in headless Chromium (used by test_browser.py and screenshots.py).

Uses the system's Chromium (Debian package at /usr/bin/chromium) through Playwright; never
downloads a browser.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GAN_STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def have_browser() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def studio_server(runs_dir: Path, port: int | None = None, env: dict | None = None,
                  log: Path | None = None) -> Iterator[str]:
    """Run `run_studio.py --no-browser` on a free port; yield its URL; always kill it."""
    port = port or free_port()
    e = dict(os.environ)
    e.update(env or {})
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_studio.py"), "--no-browser", "--port", str(port),
                             "--runs-dir", str(runs_dir)], cwd=str(ROOT), env=e, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"run_studio.py exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the studio did not answer within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if log:
            out.close()


@contextmanager
def browser_page(width: int = 1440, height: int = 900) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout: float = 60.0, settle: float = 0.4) -> None:
    """Wait until Streamlit is not running a script (its status widget disappears)."""
    page.wait_for_timeout(int(settle * 1000))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            page.wait_for_timeout(200)
            if page.locator('[data-testid="stStatusWidget"]').count() == 0:
                return
        page.wait_for_timeout(250)


def open_app(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_idle(page)


def nav(page, title: str) -> None:
    """Click a sidebar navigation link (keeps the session, unlike loading a URL)."""
    heading = page.get_by_role("heading", name=title).first
    for attempt in range(3):  # a click that lands while a fragment redraws the page can be lost
        link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
        expand = page.locator('[data-testid="stExpandSidebarButton"]')
        if not link.is_visible() and expand.count():  # below 1200 px the studio folds its sidebar
            expand.first.click()
            link.wait_for(state="visible", timeout=10_000)
        link.click()
        try:
            heading.wait_for(timeout=30_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError
            if attempt == 2:
                raise
    wait_idle(page)


def set_input(page, label: str, value) -> None:  # noqa: ANN001
    """Fill a text or number input by its label and commit it (Enter)."""
    box = page.get_by_label(label, exact=True).first
    box.click()
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit select box."""
    page.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    wait_idle(page)


def click(page, name: str) -> None:
    page.get_by_role("button", name=name).first.click()
    wait_idle(page)


def open_group(page, title: str) -> None:
    """Expand a collapsed st.expander by its title."""
    exp = page.locator('[data-testid="stExpander"] details', has_text=title).first
    if exp.get_attribute("open") is None:
        exp.locator("summary").first.click()
        page.wait_for_timeout(300)


def scroll_top(page) -> None:  # noqa: ANN001
    """Scroll Streamlit's main area (not the window) back to the top."""
    page.evaluate("""() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop > 0) e.scrollTop = 0; })""")
    page.wait_for_timeout(300)
