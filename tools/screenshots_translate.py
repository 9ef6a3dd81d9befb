"""Regenerate docs/screenshots/translate.png: the Translate page on a short pix2pix run (greyscale -> colour shapes).

    python -m tools.screenshots_translate [--steps 300] [--keep RUNS_DIR]

Makes a paired folder (tests/translate_data.py: A = greyscale of B's coloured shapes), trains pix2pix on it at
32 px on the CPU unless RUNS_DIR already holds a run, then photographs the page with a held-out input. Not a test.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tools.test_modules import load

driver = load("e2e/driver.py")
make_paired = load("translate_data.py").make_paired

OUT = driver.ROOT / "docs" / "screenshots" / "translate.png"


def train(runs: Path, steps: int) -> None:
    from core.config import preset
    from core.train import create_run, run_training

    data = make_paired(runs.parent / "grey2colour", n=80, size=40)
    t = create_run(preset("pix2pix", data=str(data), steps=steps, resolution=32, g_width=16, d_width=16,
                          batch_size=8, device="cpu", threads=2, log_every=20, sample_every=100,
                          checkpoint_every=steps, eval_every=100), runs)
    print("trained:", run_training(t), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--keep", help="use this runs folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    runs = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gs-translate-")) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    if not any(runs.glob("*/checkpoints")):
        train(runs, args.steps)
    with driver.studio_server(runs) as url, driver.browser_page(1440, 900) as page:
        driver.open_app(page, url)
        driver.nav(page, "Translate")
        page.get_by_text("Download the output").first.wait_for(timeout=60_000)
        page.mouse.move(5, 890)  # no hover tooltips in the picture
        page.wait_for_timeout(1500)  # the images finish drawing
        OUT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT))
        print("wrote", OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
