"""`python -m core bench quality|speed|translate`: benchmarks whose numbers go into docs/benchmarks.md."""
from __future__ import annotations

from ..config import PRESETS, parse_overrides


def _add_args(p) -> None:
    p.add_argument("which", choices=["quality", "speed", "translate"])
    p.add_argument("--data", default=None, help="image folder or built-in dataset (default: fashion-mnist)")
    p.add_argument("--minutes", type=float, default=15.0, help="quality: training budget")
    p.add_argument("--preset", default="default", choices=list(PRESETS))
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
    p.add_argument("--doc", default="docs/benchmarks.md", help="speed: markdown file to append results to")
    p.add_argument("--no-doc", action="store_true", help="speed, translate: print the results only")
    p.add_argument("--steps", type=int, default=None, help="translate: pix2pix steps (default 300)")
    p.add_argument("--pairs", type=int, default=600, help="translate: Fashion-MNIST images made into edge -> image pairs")


def cli_quality(args) -> int:
    from .quality import run_quality
    r = run_quality(data=args.data or "fashion-mnist", minutes=args.minutes, preset=args.preset,
                    resolution=args.resolution or 32, runs_dir=args.runs_dir,
                    overrides=parse_overrides(args.set or []))
    return 0 if r["state"] == "finished" else 1


def cmd_bench(args) -> int:
    if args.which == "quality":
        return cli_quality(args)
    if args.which == "translate":
        from .translate import cli_translate
        return cli_translate(args)
    from .speed import cli_speed
    return cli_speed(args)


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="run a benchmark and append its results to docs/benchmarks.md")
    _add_args(b)
    b.set_defaults(func=cmd_bench)
