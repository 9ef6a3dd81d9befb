"""Command line: `python -m core COMMAND` — each family adds its own sub-commands (user errors exit 2 with one clear line).

The commands come from the families' ``add_parser(sub)`` functions, pulled here by plain
imports: train/resume (core.train.cli), scan/cache (core.data.cli), generate
(core.generator.cli), export (core.export.cli), evaluate (core.metrics.cli), bench
(core.bench.cli), serve (core.serve.cli), weights (core.weights.cli); presets is this module's own.
"""
from __future__ import annotations

import argparse
import sys

from .config import FIELD_HELP, PRESET_HELP, PRESETS, ConfigError


def cmd_presets(args) -> int:
    for name, desc in PRESET_HELP.items():
        print(f"{name:15s} {desc}")
        if PRESETS[name]:
            print(" " * 16 + ", ".join(f"{k}={v}" for k, v in PRESETS[name].items()))
    print("\nConfig fields (--set key=value):")
    for k, h in FIELD_HELP.items():
        print(f"  {k:18s} {h}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .bench import cli as bench_cli
    from .data import cli as data_cli
    from .export import cli as export_cli
    from .generator import cli as generator_cli
    from .metrics import cli as metrics_cli
    from .serve import cli as serve_cli
    from .train import cli as train_cli
    from .translate import cli as translate_cli
    from .weights import cli as weights_cli
    p = argparse.ArgumentParser(prog="python -m core", description="GAN Studio: train and use GANs from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    train_cli.add_parser(sub)
    generator_cli.add_parser(sub)
    data_cli.add_parser(sub)
    pr = sub.add_parser("presets", help="list presets and config fields")
    pr.set_defaults(func=cmd_presets)
    export_cli.add_parser(sub)
    metrics_cli.add_parser(sub)
    bench_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    weights_cli.add_parser(sub)
    translate_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .data import DataError
    from .runs import RunError
    from .train.checkpoint import CheckpointError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, RunError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
