"""`python -m core export`: a trained generator as a safetensors bundle, torch.export, ONNX or TorchScript, with a model card."""
from __future__ import annotations

import argparse
import sys

from ..config import ConfigError
from ..train.checkpoint import CheckpointError
from .writers import ALL_FORMAT_HELP, ALL_FORMATS, ExportError, export_generator


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="run folder, checkpoint file, or an exported .safetensors bundle")
    p.add_argument("--format", dest="fmt", choices=ALL_FORMATS, default="safetensors",
                   help="; ".join(f"{k}: {v}" for k, v in ALL_FORMAT_HELP.items()))
    p.add_argument("--out", help="output file (default RUN_DIR/exports/<run>-step<N>.<ext>); a folder works too")
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, a step number, or a checkpoint path")


def cmd_export(args: argparse.Namespace) -> int:
    try:
        res = export_generator(args.run_dir, args.fmt, args.out, args.checkpoint)
    except (ExportError, CheckpointError, ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for n in res.notes:
        print(f"note: {n}", file=sys.stderr)
    extra = f"; max difference from PyTorch {res.parity:.2e}" if res.parity is not None else ""
    print(f"Exported step {res.step} as {res.fmt}{extra}: " + ", ".join(p.name for p in res.files), file=sys.stderr)
    print(res.path)
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser("export", help="export a trained generator (safetensors bundle, torch.export, ONNX or TorchScript) with a model card")
    _add_args(e)
    e.set_defaults(func=cmd_export)
