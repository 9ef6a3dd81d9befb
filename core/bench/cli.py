"""`python -m core bench quality|speed|translate`: benchmarks whose numbers go into docs/benchmarks.md."""
from __future__ import annotations

import json
from pathlib import Path

from ..config import PRESETS, parse_overrides


def _add_args(p) -> None:
    p.add_argument("which", choices=["quality", "sweep", "speed", "translate"])
    p.add_argument("--data", default=None, help="image folder or built-in dataset (default: fashion-mnist)")
    p.add_argument("--minutes", type=float, default=15.0, help="quality: training budget")
    p.add_argument("--cpu-minutes", type=float, default=0.0,
                   help="quality: budget in CPU minutes of the training process instead of wall minutes (fair on a shared machine)")
    p.add_argument("--seed", type=int, default=0, help="quality: training seed")
    p.add_argument("--tag", default="", help="quality: name for this variant in file names and tables")
    p.add_argument("--json-out", default=None, help="quality: also write the result as JSON to this file")
    p.add_argument("--preset", default="default", choices=list(PRESETS))
    p.add_argument("--variant", action="append", metavar="NAME=PRESET[+KEY=VALUE...]",
                   help="sweep: a configuration to compare (repeat); the first is the baseline of the 'vs first' column")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="sweep: seeds per configuration")
    p.add_argument("--jobs", type=int, default=2, help="sweep: trainings at a time (one CPU thread each)")
    p.add_argument("--title", default="", help="sweep: heading of the section appended to --doc")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--runs-dir", default="runs/bench")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--quick", action="store_true", help="speed: fewer rounds (a smoke run)")
    p.add_argument("--rounds", type=int, default=None, help="speed: alternating rounds per configuration")
    p.add_argument("--round-s", type=float, default=None, help="speed: seconds per side per round")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="speed: batch sizes (with --resolution)")
    p.add_argument("--variants", default="", help="speed: extra variants of ours timed in the same rounds: "
                   "comma list of plain (fast paths off), compile, threads1")
    p.add_argument("--load", default="busy", choices=["busy", "studio", "none"],
                   help="speed: competing load switched on/off between rounds (studio = server + headless Chromium)")
    p.add_argument("--images", type=int, default=10_000, help="speed: Fashion-MNIST images to export as PNGs")
    p.add_argument("--parts", default="scan,first,speed,load", help="speed: which parts to run")
    p.add_argument("--doc", default="docs/benchmarks.md", help="speed, quality: markdown file to append results to")
    p.add_argument("--no-doc", action="store_true", help="speed, translate, quality: print the results only")
    p.add_argument("--steps", type=int, default=None, help="translate: pix2pix steps (default 300)")
    p.add_argument("--pairs", type=int, default=600, help="translate: Fashion-MNIST images made into edge -> image pairs")


def cli_quality(args) -> int:
    from .quality import run_quality
    r = run_quality(data=args.data or "fashion-mnist", minutes=args.minutes, preset=args.preset,
                    resolution=args.resolution or 32, runs_dir=args.runs_dir, seed=args.seed, tag=args.tag,
                    doc=None if args.no_doc else args.doc, cpu_minutes=args.cpu_minutes,
                    overrides=parse_overrides(args.set or []))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(r, indent=2))
    return 0 if r["state"] == "finished" else 1


def cli_sweep(args) -> int:
    from .sweep import Variant, run_sweep
    if not args.variant:
        raise SystemExit("error: --variant: give at least one, e.g. --variant base=default")
    try:
        variants = [Variant.parse(v) for v in args.variant]
    except ValueError as e:
        raise SystemExit(f"error: --variant: {e}") from None
    res = run_sweep(variants, args.seeds, args.cpu_minutes or 10.0, data=args.data or "fashion-mnist",
                    resolution=args.resolution or 32, jobs=args.jobs, runs_dir=args.runs_dir,
                    doc=None if args.no_doc else args.doc, title=args.title)
    return 0 if all("error" not in r for r in res) else 1


def cmd_bench(args) -> int:
    if args.which == "quality":
        return cli_quality(args)
    if args.which == "sweep":
        return cli_sweep(args)
    if args.which == "translate":
        from .translate import cli_translate
        return cli_translate(args)
    from .speed import cli_speed
    return cli_speed(args)


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="run a benchmark and append its results to docs/benchmarks.md")
    _add_args(b)
    b.set_defaults(func=cmd_bench)
