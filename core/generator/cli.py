"""`python -m core generate`: images from a run folder, a checkpoint or an exported bundle (same seed, same images)."""
from __future__ import annotations

import sys

from ..config import ConfigError


def cmd_generate(args) -> int:
    """Images from a run folder, a checkpoint or an exported bundle; same seed -> same images."""
    from .loading import load_generator
    from .sampling import generate_seeds, is_style_based, parse_layers, style_mix_seeds, truncation_space
    from .writer import BATCH, ImageWriter, check_seeds, output_path
    mixing = args.style_mix is not None
    n = args.n if args.n is not None else (1 if mixing else 64)
    if n < 1:
        raise ConfigError("-n", "ask for at least one image")
    if not 0.0 <= args.truncation <= 1.0:
        raise ConfigError("--truncation", f"psi must be between 0 and 1, got {args.truncation}")
    if args.mix_layers is not None and not mixing:
        raise ConfigError("--mix-layers", "only applies with --style-mix SEED")
    seeds = check_seeds(args.seed, n)
    out = output_path(args.out, args.zip)  # before loading: a bad --out is known at once
    g = load_generator(args.source, checkpoint=args.checkpoint)
    if g.cfg.task != "generate":  # a translator maps images to images: there is no noise to sample
        raise ConfigError("task", f"{args.source} is a {g.cfg.task} run: translate images with "
                                  f"python -m core translate {args.source} --input FOLDER --out DIR")
    spec = args.mix_layers or "coarse"
    if mixing and not is_style_based(g.G):
        raise ConfigError("--style-mix", f"style mixing needs arch=stylegan2 (this generator is {g.cfg.arch}: "
                                         "it has no per-layer styles)")
    tag = "-".join(map(str, parse_layers(spec, g.G))) if mixing else ""
    # One batch at a time: -n 50000 at 256 px would otherwise hold ~10 GB of images before writing any.
    with ImageWriter(out, args.zip) as writer:
        for i in range(0, n, BATCH):
            chunk = seeds[i:i + BATCH]
            if mixing:
                imgs = style_mix_seeds(g, chunk, args.style_mix, spec, args.truncation, args.class_id)
                names = [f"mix_{s:06d}_{args.style_mix:06d}_w{tag}.png" for s in chunk]
            else:
                imgs = generate_seeds(g, chunk, args.truncation, args.class_id)
                names = [f"seed_{s:06d}.png" for s in chunk]
            for name, img in zip(names, imgs):
                writer.add(name, img)
    what = f"styles {args.mix_layers or 'coarse'} of seed {args.style_mix} mixed into " if mixing else ""
    psi = f", truncation {args.truncation} in {truncation_space(g.G)}-space" if args.truncation < 1 else ""
    print(f"Wrote {len(seeds)} images ({what}seeds {seeds[0]}-{seeds[-1]}{psi}) from {g.source} "
          f"(step {g.step}{', EMA' if g.uses_ema else ''}) to {out}", file=sys.stderr)
    print(out)
    return 0


def add_parser(sub) -> None:
    g = sub.add_parser("generate", help="write images from a trained generator")
    g.add_argument("source", help="run folder, checkpoint file, or exported bundle (.safetensors or its .json)")
    g.add_argument("-n", type=int, default=None, help="number of images (default 64; 1 with --style-mix)")
    g.add_argument("--out", default="samples", help="output folder (or zip file with --zip)")
    g.add_argument("--zip", action="store_true", help="write one zip of PNGs instead of a folder")
    g.add_argument("--checkpoint", default="latest", help="for a run folder: latest (default), best or a step number")
    g.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i (same seed -> same image)")
    g.add_argument("--truncation", type=float, default=1.0,
                   help="psi in [0, 1]: lower = more typical, less varied (0 = the mean image); stylegan2 pulls w "
                        "toward its tracked average w_avg, the other families truncate z")
    g.add_argument("--style-mix", type=int, default=None, metavar="SEED",
                   help="stylegan2 only: take the styles of --mix-layers from this seed (the rest from --seed)")
    g.add_argument("--mix-layers", default=None, metavar="LAYERS",
                   help="with --style-mix: coarse (default; pose, shape), middle (features), fine (colour, texture), "
                        "a w index range such as 0-3, or a comma list")
    g.add_argument("--class", dest="class_id", help="class index or name for conditional models "
                                                    "(default: image i gets class (seed+i) mod classes)")
    g.set_defaults(func=cmd_generate)
