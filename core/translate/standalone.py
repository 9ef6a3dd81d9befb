#!/usr/bin/env python
"""Standalone GAN Studio translator (ships as translate.py in every translator bundle): needs only torch, safetensors, numpy, pillow.

    python translate.py --input FOLDER_OR_FILE --out DIR [--direction AtoB|BtoA] [--bundle NAME.json]

Runs the network stored in NAME.graph.json (ATen operations written by torch.export at export time)
with NAME.safetensors, using gan_graph.py beside it (the graph runner every bundle ships). Each
input is decoded as GAN Studio decodes it (EXIF orientation, transparency on white, centre crop at
source size, Lanczos down / bicubic up) and written under its own name: the same pixels as
`python -m core translate BUNDLE` for 8-bit L/RGB/RGBA/P images.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
MARKER = "Standalone GAN Studio translator"


@functools.cache
def _runner():
    if __package__:  # inside GAN Studio (the export's parity check)
        from ..export.standalone import GraphError, run_graph
        return GraphError, run_graph
    import importlib.util  # in a bundle folder: gan_graph.py beside this script, loaded by its path
    spec = importlib.util.spec_from_file_location("gan_graph", Path(__file__).resolve().parent / "gan_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GraphError, mod.run_graph


def decode(path, resolution: int, channels: int) -> np.ndarray:
    """uint8 (C, R, R), as GAN Studio's load_image does it for 8-bit images."""
    with Image.open(path) as im:
        im.seek(0)
        im.load()
        im = ImageOps.exif_transpose(im) or im
        mode = im.mode
        if mode == "1":
            im = im.convert("L")
        elif mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            im = im.convert("L" if mode in ("LA", "La", "L") else "RGB")
        elif mode not in ("L", "RGB"):
            im = im.convert("RGB")
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        if side == resolution:
            im = im if (w, h) == (side, side) else im.crop(tuple(round(v) for v in box))
        elif side > resolution:
            im = im.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)
        else:
            im = im.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box)
        a = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))


def translate(graph: dict, weights: dict, x: np.ndarray) -> np.ndarray:
    """uint8 (C, R, R) in and out, [-1, 1] on the network's side."""
    _, run_graph = _runner()
    t = torch.from_numpy(x).float().div(127.5).sub(1)[None]
    with torch.no_grad():
        y = run_graph(graph, weights, {"x": t})[0]
    return y.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).numpy()


def load(bundle: Path, direction: str | None) -> tuple[dict, dict, dict, str]:
    """(metadata, graph of the direction, the weights, direction)."""
    from safetensors.torch import load_file
    meta = json.loads(bundle.read_text(encoding="utf-8"))
    for what in ("weights", "graph"):
        if Path(str(meta.get(what))).name != meta.get(what):
            raise ValueError(f"'{what}' must name a file beside the bundle")
    d = direction or meta["default_direction"]
    if d not in meta["directions"]:
        raise ValueError(f"this translator goes {', '.join(meta['directions'])} only, not {d}")
    graphs = json.loads((bundle.parent / meta["graph"]).read_text(encoding="utf-8"))["directions"]
    sd = load_file(str(bundle.parent / meta["weights"]))
    return meta, graphs[d], sd, d  # the graph's weight keys carry the direction prefix


def _find_bundle(folder: Path) -> Path:
    found = []
    for p in sorted(folder.glob("*.json")):
        if p.name.endswith(".graph.json"):
            continue
        try:
            if json.loads(p.read_text(encoding="utf-8")).get("format") == "gan-studio-translator":
                found.append(p)
        except (OSError, ValueError, AttributeError):
            continue
    if len(found) != 1:
        raise SystemExit(f"error: --bundle: expected exactly one translator bundle in {folder}, found "
                         f"{', '.join(p.name for p in found) or 'none'}")
    return found[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Translate images with an exported GAN Studio pix2pix/cyclegan translator.")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--out", required=True, help="output folder: one image per input, same file name")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), help="default: the direction the run trained")
    p.add_argument("--bundle", help="the bundle's NAME.json (default: the one beside this script)")
    a = p.parse_args(argv)
    bundle = Path(a.bundle) if a.bundle else _find_bundle(Path(__file__).resolve().parent)
    try:
        meta, graph, weights, d = load(bundle, a.direction)
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"error: {bundle}: {e}") from None
    src, out = Path(a.input), Path(a.out)
    files = [src] if src.is_file() else sorted(f for f in src.iterdir() if f.is_file() and f.suffix.lower() in EXTS
                                               and not f.name.startswith(".")) if src.is_dir() else []
    if not files:
        raise SystemExit(f"error: {src}: no images")
    if out.resolve() == files[0].parent.resolve():
        raise SystemExit(f"error: {out}: the output folder is the input folder; the inputs would be overwritten")
    out.mkdir(parents=True, exist_ok=True)
    c = meta["channels"]
    for f in files:
        y = translate(graph, weights, decode(f, meta["resolution"], c))
        Image.fromarray(y[0] if c == 1 else np.ascontiguousarray(y.transpose(1, 2, 0))).save(out / f.name)
    print(f"Wrote {len(files)} images to {out} ({d})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
