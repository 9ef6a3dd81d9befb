"""`python -m core generate`: images from a run folder, a checkpoint or an exported bundle (same seed, same images)."""
from __future__ import annotations

import sys

from ..config import ConfigError


def cmd_generate(args) -> int:
    """Images from a run folder, a checkpoint or an exported bundle; same seed -> same images."""
    from .loading import load_generator
    from .sampling import generate_seeds, write_images
    if args.n < 1:
        raise ConfigError("-n", "ask for at least one image")
    if not 0.0 <= args.truncation <= 1.0:
        raise ConfigError("--truncation", f"psi must be between 0 and 1, got {args.truncation}")
    g = load_generator(args.source, checkpoint=args.checkpoint)
    seeds = list(range(args.seed, args.seed + args.n))
    imgs = generate_seeds(g, seeds, args.truncation, args.class_id)
    out = write_images(imgs, seeds, args.out, as_zip=args.zip)
    print(f"Wrote {len(seeds)} images from {g.source} (step {g.step}{', EMA' if g.uses_ema else ''}) to {out}",
          file=sys.stderr)
    print(out)
    return 0


def add_parser(sub) -> None:
    g = sub.add_parser("generate", help="write images from a trained generator")
    g.add_argument("source", help="run folder, checkpoint file, or exported bundle (.safetensors or its .json)")
    g.add_argument("-n", type=int, default=64, help="number of images")
    g.add_argument("--out", default="samples", help="output folder (or zip file with --zip)")
    g.add_argument("--zip", action="store_true", help="write one zip of PNGs instead of a folder")
    g.add_argument("--checkpoint", default="latest", help="for a run folder: latest (default), best or a step number")
    g.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i (same seed -> same image)")
    g.add_argument("--truncation", type=float, default=1.0,
                   help="psi in [0, 1]: lower = more typical, less varied (0 = the mean image)")
    g.add_argument("--class", dest="class_id", help="class index or name for conditional models "
                                                    "(default: image i gets class (seed+i) mod classes)")
    g.set_defaults(func=cmd_generate)
