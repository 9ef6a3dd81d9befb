"""`python -m core bench translate`: pix2pix on Fashion-MNIST edge maps -> images; held-out L1/PSNR/SSIM over
training against the constant mean-training-image predictor, an input/output/target grid, a docs section."""
from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import PRESETS
from ..translate.ssim import ssim

FASHION = Path("/usr/share/datasets/fashion-mnist")
_PIX2PIX = {**PRESETS["pix2pix"], "g_width": 32, "d_width": 32}  # the preset, narrower: minutes on a CPU


def fashion_images(n: int, root: Path = FASHION) -> np.ndarray:
    """The first ``n`` Fashion-MNIST training images, uint8 N x 28 x 28, from the local idx file."""
    with gzip.open(root / "train-images-idx3-ubyte.gz", "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw.reshape(-1, 28, 28)[:n].copy()


def edge_map(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of a greyscale image, scaled to 0..255 per image (dark edges on white would
    work as well; white on black keeps the map's mean close to the pix2pix edges2* datasets')."""
    x = img.astype(np.float32)
    p = np.pad(x, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    m = np.hypot(gx, gy)
    return (255 * m / max(float(m.max()), 1e-6)).astype(np.uint8)


def make_edge_pairs(images: np.ndarray, out: Path, size: int = 32) -> Path:
    """A paired folder: ``A/i.png`` = the edge map of ``B/i.png`` = the image, both at ``size`` px."""
    (out / "A").mkdir(parents=True, exist_ok=True)
    (out / "B").mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        b = np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))
        Image.fromarray(edge_map(b)).save(out / "A" / f"{i:05d}.png")
        Image.fromarray(b).save(out / "B" / f"{i:05d}.png")
    return out


def scores(out: torch.Tensor, tg: torch.Tensor) -> dict[str, float]:
    """L1, PSNR (dB) and SSIM of images in [-1, 1], as the training's eval/* compute them."""
    l1 = (out - tg).abs().mean() / 2
    mse = ((out - tg) / 2).pow(2).flatten(1).mean(1)
    psnr = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
    ss = ssim((out.clamp(-1, 1) + 1) / 2, (tg + 1) / 2).mean()
    return {"l1": float(l1), "psnr": float(psnr), "ssim": float(ss)}


def run_translate_bench(folder: str | Path, steps: int = 300, resolution: int = 32, runs_dir: str = "runs/bench",
                        out_dir: str | Path = "docs/benchmarks", doc: str | Path | None = "docs/benchmarks.md",
                        overrides: dict | None = None) -> dict:
    """Train pix2pix on the paired ``folder``; held-out scores over training and of the mean-image baseline."""
    from ..runs import load_run
    from ..train import run_training
    from ..train.setup import create_run
    from ..translate.data import center_crop
    evals = max(1, steps // 6)
    from ..config import TrainConfig
    cfg = TrainConfig(**{**_PIX2PIX, "data": str(folder), "resolution": resolution, "steps": steps,
                         "eval_every": evals, "sample_every": steps, "checkpoint_every": steps,
                         "log_every": max(1, evals // 2), "threads": 1, "name": "bench-translate", **(overrides or {})})
    t0 = time.time()
    t = create_run(cfg, runs_dir)
    final = run_training(t)
    wall = time.time() - t0
    task, ds = t.task, t.dataset
    mean_img = ds.to_float(center_crop(ds.b, resolution)).mean(0, keepdim=True)  # the mean training target
    base = scores(mean_img.expand_as(task.eval_tg).to(task.eval_tg.device), task.eval_tg)
    rows = load_run(t.store.path).metrics()
    curve = [(r["step"], r["eval/l1"], r["eval/psnr"], r["eval/ssim"]) for r in rows if "eval/l1" in r]
    with task._eval_mode():
        model = scores(t.G(task.eval_in).float(), task.eval_tg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grid = out / f"translate-pix2pix-fashion-edges-{resolution}px.png"
    latest = load_run(t.store.path).latest_sample()
    if latest is not None:
        from ..imaging import upscale_png
        grid.write_bytes(upscale_png(latest.read_bytes(), 512))
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "state": final, "steps": t.step_count, "wall_s": round(wall, 1),
              "train_pairs": len(ds), "held_out": len(task.eval_tg), "resolution": resolution,
              "batch_size": cfg.batch_size, "g_width": cfg.g_width, "d_width": cfg.d_width, "model": model,
              "mean_image": base, "curve": curve, "grid": str(grid), "run_dir": str(t.store.path)}
    if doc:
        _append_doc(Path(doc), result, grid)
    print(json.dumps(result, indent=2))
    return result


def _append_doc(doc: Path, r: dict, grid: Path) -> None:
    m, b = r["model"], r["mean_image"]
    lines = [f"\n## Translation: pix2pix, Fashion-MNIST edge maps → images, {r['resolution']} px ({r['date']})\n",
             f"`python -m core bench translate` (the pix2pix preset, widths 32): {r['train_pairs']} training pairs (A = Sobel edge map of B, B = the "
             f"Fashion-MNIST image), {r['held_out']} held out, batch {r['batch_size']}, widths {r['g_width']}/"
             f"{r['d_width']}, {r['steps']} CPU steps on 1 thread ({r['wall_s']:.0f} s, {r['state']}).\n",
             "| held-out | L1 (pixels in [0, 1]) | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for step, l1, psnr, ss in r["curve"]:
        lines.append(f"| pix2pix after {step} steps | {l1:.3f} | {psnr:.2f} | {ss:.3f} |")
    lines.append(f"| pix2pix, final | **{m['l1']:.3f}** | **{m['psnr']:.2f}** | **{m['ssim']:.3f}** |")
    lines.append(f"| constant mean training image | {b['l1']:.3f} | {b['psnr']:.2f} | {b['ssim']:.3f} |")
    rel = (1 - m["l1"] / b["l1"]) * 100 if b["l1"] else 0.0
    lines += ["", f"The trained generator's held-out L1 is {rel:.0f} % below the mean-image predictor's (the held-out "
              "pairs are the run's own split, at most 8: a small sample).", "",
              "Rows: held-out edge maps, pix2pix outputs, targets (each column one triplet):", "",
              f"![pix2pix triplets]({grid.parent.name}/{grid.name})", ""]
    with open(doc, "a") as f:
        f.write("\n".join(lines))


def cli_translate(args) -> int:
    """`bench translate`: build the edge-map folder from local Fashion-MNIST (--data: an existing paired folder)."""
    if args.data:
        folder = Path(args.data)
    else:
        if not (FASHION / "train-images-idx3-ubyte.gz").exists():
            print(f"bench translate: {FASHION} not found; pass --data PAIRED_FOLDER")
            return 2
        folder = make_edge_pairs(fashion_images(args.pairs), Path(args.runs_dir) / f"fashion-edges-{args.pairs}")
    from ..config import parse_overrides
    r = run_translate_bench(folder, steps=args.steps or 300, resolution=args.resolution or 32, runs_dir=args.runs_dir,
                            doc=None if args.no_doc else args.doc, overrides=parse_overrides(args.set or []))
    return 0 if r["state"] == "finished" else 1
