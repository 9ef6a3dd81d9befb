"""`python -m core weights [status|fetch] [--from FILE]`: the FID Inception-v3 weights, once per machine."""
from __future__ import annotations

import argparse
import sys


def cmd_weights(args: argparse.Namespace) -> int:
    from ..metrics.features import FeatureNetUnavailable, find_inception_weights
    from .fetch import WeightsError, fetch_weights, install_weights
    try:
        if args.from_file:
            if args.action == "fetch":
                raise WeightsError("--from FILE installs a copy you have; it cannot be combined with fetch")
            path = install_weights(args.from_file, force=args.force)
            print(f"Installed the FID Inception weights (checksum and contents verified) at {path}", file=sys.stderr)
        elif args.action == "fetch":
            path = fetch_weights(force=args.force, progress=sys.stderr.isatty())
            print(f"FID Inception weights ready (checksum and contents verified) at {path}", file=sys.stderr)
        else:
            try:
                path = find_inception_weights()
            except FeatureNetUnavailable as e:
                print(str(e), file=sys.stderr)
                print("\nGet them with: python -m core weights fetch   (or --from FILE)", file=sys.stderr)
                return 1
            print(f"FID/KID/IS use the Inception weights at {path}", file=sys.stderr)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def add_parser(sub) -> None:
    w = sub.add_parser("weights", help="get the FID Inception-v3 weights onto this machine (fetch, or --from FILE)")
    w.add_argument("action", nargs="?", choices=("status", "fetch"), default="status",
                   help="status (default): where the weights are, or how to get them; fetch: download them once "
                        "(~92 MB, checksum verified) into the user cache")
    w.add_argument("--from", dest="from_file", metavar="FILE",
                   help="install a copy you downloaded elsewhere (checked the same way)")
    w.add_argument("--force", action="store_true", help="replace a copy that is already installed")
    w.set_defaults(func=cmd_weights)
