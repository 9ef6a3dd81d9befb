"""Seconds per training step (Trainer.step, one D + one G update) of presets on this machine, timed in
alternating rounds so a change in the machine's load hits every configuration alike.

    PYTHONPATH=. python benchmarks/family_step_cost.py [--resolutions 32 64 128] [--rounds 3] [--steps 4] [--threads 2]

At each resolution it times the `default` DCGAN, `stylegan2-small`, and a DCGAN whose widths are
chosen so its G has about as many parameters as stylegan2-small's (the fair "same size" comparison);
`--full` adds the full stylegan2 recipe (~10x slower: minutes per round on a CPU).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from core.config import preset
from core.data.dataset import ImageDataset
from core.models import build_models, count_parameters
from core.train import Trainer


def matched_dcgan_width(target_g_params: int, resolution: int) -> int:
    """The dcgan g_width (= d_width) whose generator's parameter count is nearest the target."""
    best, best_gap = 4, float("inf")
    for w in range(4, 129, 2):
        g, _ = build_models(preset("default", resolution=resolution, g_width=w, d_width=w, device="cpu"), 3)
        gap = abs(count_parameters(g) - target_g_params)
        if gap < best_gap:
            best, best_gap = w, gap
    return best


def configs(resolution: int, full: bool) -> dict[str, tuple[str, dict]]:
    small_g, _ = build_models(preset("stylegan2-small", resolution=resolution, device="cpu"), 3)
    w = matched_dcgan_width(count_parameters(small_g), resolution)
    out = {
        "dcgan, `default` preset, batch 64": ("default", {}),
        "`stylegan2-small`, batch 32": ("stylegan2-small", {}),
        f"dcgan sized like stylegan2-small's G (widths {w}), batch 32": ("default", {"batch_size": 32,
                                                                                   "g_width": w, "d_width": w}),
    }
    if full:
        out["`stylegan2` full recipe, batch 32"] = ("stylegan2", {})
    return out


def time_resolution(r: int, args) -> None:
    images = torch.randint(0, 256, (256, 3, r, r), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ds = ImageDataset(images, None, [], 3, r, "random", "random")
    trainers = {}
    for label, (name, over) in configs(r, args.full).items():
        cfg = preset(name, **{**over, "resolution": r, "device": "cpu", "threads": args.threads, "eval_every": 0})
        t = Trainer(cfg, ds)
        for _ in range(2):  # warm-up: first steps allocate and pick kernels
            t.step()
        trainers[label] = t
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for _ in range(args.rounds):
        for label, t in trainers.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                t.step()
            times[label].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times[next(k for k in trainers if k.startswith("dcgan sized"))])
    print(f"\n| configuration at {r} px | G params | D params | s/step (median, min-max over {args.rounds} rounds) "
          "| ms/image | step time / same-size dcgan |")
    print("|---|---|---|---|---|---|")
    for label, t in trainers.items():
        med = statistics.median(times[label])
        print(f"| {label} | {count_parameters(t.G) / 1e6:.2f} M | {count_parameters(t.D) / 1e6:.2f} M | "
              f"{med:.3f} ({min(times[label]):.3f}-{max(times[label]):.3f}) | {1000 * med / t.cfg.batch_size:.1f} "
              f"| {med / base:.2f}x |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per configuration per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="also the full stylegan2 recipe (slow on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for r in args.resolutions:
        time_resolution(r, args)


if __name__ == "__main__":
    main()
