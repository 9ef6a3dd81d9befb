"""Seconds per training step (Trainer.step, one D + one G update) of presets on this machine, timed in
alternating rounds so a change in the machine's load hits every configuration alike.

    PYTHONPATH=. python benchmarks/family_step_cost.py [--resolution 32] [--rounds 3] [--steps 4] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from core.config import preset
from core.data.dataset import ImageDataset
from core.models import count_parameters
from core.train import Trainer

CONFIGS = {  # label: (preset, overrides)
    "dcgan (default preset, batch 64)": ("default", {}),
    "dcgan (default preset, batch 32)": ("default", {"batch_size": 32}),
    "stylegan2-small (batch 32)": ("stylegan2-small", {}),
    "stylegan2 full recipe (batch 32)": ("stylegan2", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per configuration per round")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = args.resolution
    images = torch.randint(0, 256, (256, 3, r, r), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ds = ImageDataset(images, None, [], 3, r, "random", "random")
    trainers = {}
    for label, (name, over) in CONFIGS.items():
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
    print(f"| configuration at {r} px | G params | D params | s/step (median, min-max over {args.rounds} rounds) | ms/image |")
    print("|---|---|---|---|---|")
    for label, t in trainers.items():
        med = statistics.median(times[label])
        print(f"| {label} | {count_parameters(t.G) / 1e6:.2f} M | {count_parameters(t.D) / 1e6:.2f} M | "
              f"{med:.3f} ({min(times[label]):.3f}-{max(times[label]):.3f}) | {1000 * med / t.cfg.batch_size:.1f} |")


if __name__ == "__main__":
    main()
