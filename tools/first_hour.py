"""Time a new user's first steps in a real headless browser and photograph them (docs/first-hour.md).

    python -m tools.first_hour [--wait 420]

Starts run_studio.py with an empty runs folder, opens the Data page (the built-in shapes set), goes to
Train, presses Start with the default settings, waits for the first grid after step 0 on the Monitor,
switches pages, and saves first_hour_*.png at 1440 and 1024 px (and the Monitor in dark mode) into
docs/screenshots/. Prints the timings as JSON. Not a test.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")
OUT = driver.ROOT / "docs" / "screenshots"


def _grid_step(page) -> int:  # noqa: ANN001
    heads = page.locator("h5", has_text="Generated · step").all_inner_texts()
    m = re.search(r"step ([\d,]+)", heads[0]) if heads else None
    return int(m.group(1).replace(",", "")) if m else -1


def _timed_nav(page, title: str) -> float:  # noqa: ANN001
    t = time.monotonic()
    driver.nav(page, title)
    return round(time.monotonic() - t, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wait", type=float, default=420, help="seconds to wait for the first trained grid")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    times: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        t = time.monotonic()
        with driver.studio_server(runs, env={"GAN_STUDIO_CACHE": str(Path(tmp) / "cache")}) as url:
            times["server_ready_s"] = round(time.monotonic() - t, 2)
            with driver.browser_page(1440, 1000) as page:
                t = time.monotonic()
                driver.open_app(page, url)
                times["first_page_s"] = round(time.monotonic() - t, 2)
                page.screenshot(path=str(OUT / "first_hour_data_1440.png"))
                times["to_train_s"] = _timed_nav(page, "Train")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(OUT / "first_hour_train_1440.png"))
                t = time.monotonic()
                driver.click(page, "Start training")
                page.get_by_role("heading", name="Monitor").first.wait_for(timeout=120_000)
                times["start_to_monitor_s"] = round(time.monotonic() - t, 2)
                page.get_by_text("Generated · step").first.wait_for(timeout=120_000)
                times["start_to_first_grid_s"] = round(time.monotonic() - t, 2)
                deadline = t + args.wait
                while time.monotonic() < deadline and _grid_step(page) <= 0:
                    page.wait_for_timeout(1000)
                step = _grid_step(page)
                times["first_trained_grid_step"] = step
                times["start_to_first_trained_grid_s"] = round(time.monotonic() - t, 2) if step > 0 else None
                page.wait_for_timeout(1500)
                page.screenshot(path=str(OUT / "first_hour_monitor_1440.png"))
                for title in ("Runs", "Latent explorer", "Data", "Monitor"):
                    times[f"switch_to_{title.lower().replace(' ', '_')}_s"] = _timed_nav(page, title)
            for scheme in ("light", "dark"):
                with driver.browser_page(1024, 768) as page:
                    page.emulate_media(color_scheme=scheme)
                    driver.open_app(page, url)
                    for title in (("Monitor", "Runs") if scheme == "light" else ("Monitor",)):
                        page.goto(f"{url}/{title.lower()}")
                        page.get_by_role("heading", name=title).first.wait_for()
                        driver.wait_idle(page, timeout=10)
                        page.wait_for_timeout(3000)
                        page.screenshot(path=str(OUT / f"first_hour_{title.lower()}_1024{'_dark' if scheme == 'dark' else ''}.png"))
    print(json.dumps(times, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
