"""`python -m core translate RUN --input FOLDER_OR_FILE --out DIR [--direction AtoB|BtoA]`: one output per input, same name."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import ConfigError, TrainConfig
from ..data.decode import load_image
from ..data.errors import DataError
from ..train.checkpoint import BEST_NAME, CheckpointError, load_usable_checkpoint
from ..train.setup import newest_checkpoint
from .data import EXTS
from .models import build_translation_models


def load_translation_state(run: str | Path, checkpoint: str = "latest") -> tuple[dict, Path]:
    """(checkpoint state, its path) of a translation run folder (latest or best) or checkpoint file."""
    p = Path(run)
    if p.is_file():
        return load_usable_checkpoint(p), p
    if p.is_dir():
        folder = p / "checkpoints"
        if checkpoint == "best":
            if not (folder / BEST_NAME).is_file():
                raise CheckpointError(f"{folder / BEST_NAME}: no best checkpoint (eval_every was 0 or not reached yet)")
            return load_usable_checkpoint(folder / BEST_NAME), folder / BEST_NAME
        found = newest_checkpoint(folder)
        if found is None:
            raise CheckpointError(f"{p}: no usable checkpoint in {folder} (train the run first)")
        return found[1], found[0]
    raise FileNotFoundError(f"{p}: no such run folder or checkpoint file")


def translator_from_state(state: dict, direction: str | None, where: str | Path = "") -> tuple[torch.nn.Module, TrainConfig, int]:
    cfg = TrainConfig.from_dict(state["config"])
    if cfg.task == "generate":
        raise ConfigError("task", f"{where} is a generate run (images from noise); translate needs a pix2pix or cyclegan run")
    direction = direction or cfg.direction
    channels = int(state["dataset"]["channels"])
    G, _ = build_translation_models(cfg, channels)
    if direction == cfg.direction:
        G.load_state_dict(state["G"])
    elif cfg.task == "cyclegan":
        G.load_state_dict(state["translate"]["G2"])  # the generator of the other direction
    else:
        raise ConfigError("direction", f"this pix2pix run learned {cfg.direction} only; only cyclegan runs translate both ways")
    return G.eval(), cfg, channels


def load_translator(run: str | Path, direction: str | None = None, checkpoint: str = "latest"
                    ) -> tuple[torch.nn.Module, TrainConfig, int]:
    """(generator in eval mode, config, channels) of a translation run folder, checkpoint file or exported
    translator bundle for ``direction`` (default: the one it trained). CycleGAN runs go both ways; pix2pix
    only its own."""
    from .bundle import is_translator_bundle, load_translator_bundle
    if is_translator_bundle(run):
        nets, cfg, channels = load_translator_bundle(run)
        direction = direction or cfg.direction
        if direction not in nets:
            raise ConfigError("direction", f"this bundle translates {', '.join(nets)} only")
        return nets[direction], cfg, channels
    state, _ = load_translation_state(run, checkpoint)
    return translator_from_state(state, direction, run)


def input_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(f"{p}: no such file or folder")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in EXTS and not f.name.startswith("."))
    if not files:
        raise DataError(f"{p}: holds no images ({', '.join(e[1:] for e in EXTS)})")
    return files


@torch.no_grad()
def translate_array(G: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """uint8 C x H x W in, uint8 C x H x W out ([-1, 1] on the network's side, as in training): the one
    transform the CLI, the Translate page and serve's /translate share."""
    y = G(torch.from_numpy(x).float().div(127.5).sub(1)[None])[0]
    return y.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).numpy()


@torch.no_grad()
def translate_files(G: torch.nn.Module, files: list[Path], out: Path, resolution: int, channels: int,
                    progress=None) -> list[Path]:
    """Translate each file (centre-cropped and resized as in training) into ``out`` under its own name."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, f in enumerate(files):
        y = translate_array(G, load_image(f, resolution, channels))
        im = Image.fromarray(y[0] if channels == 1 else np.ascontiguousarray(y.transpose(1, 2, 0)))
        dest = out / f.name
        im.save(dest)
        written.append(dest)
        if progress:
            progress(i + 1, len(files), f.name)
    return written


def cmd_translate(args) -> int:
    G, cfg, channels = load_translator(args.run, args.direction, args.checkpoint)
    files = input_files(args.input)
    out = Path(args.out)
    if out.resolve() == Path(args.input).resolve() or any(out.resolve() == f.parent.resolve() for f in files[:1]):
        raise DataError(f"{out}: the output folder is the input folder; the inputs would be overwritten")

    def progress(done: int, total: int, name: str) -> None:
        print(f"\r[{'#' * (20 * done // total):20s}] {done}/{total} {name}"[:100], end="" if done < total else "\n",
              file=sys.stderr, flush=True)

    translate_files(G, files, out, cfg.resolution, channels, progress)
    print(f"wrote {len(files)} image{'s' if len(files) != 1 else ''} to {out} ({cfg.resolution} px, "
          f"{args.direction or cfg.direction})")
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser("translate", help="translate images with a pix2pix or cyclegan run")
    t.add_argument("run", help="run folder, checkpoint file or exported translator bundle (.safetensors / .json) of a pix2pix/cyclegan run")
    t.add_argument("--input", required=True, help="an image file or a folder of images")
    t.add_argument("--out", required=True, help="output folder: one image per input, with the same file name")
    t.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="default: the run's own; the other one needs a cyclegan run")
    t.add_argument("--checkpoint", choices=("latest", "best"), default="latest", help="for a run folder")
    t.set_defaults(func=cmd_translate)
