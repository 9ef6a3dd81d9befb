"""Where a step's time goes: torch.profiler over a few steps of ours and of the textbook loop.

``python -m core.bench.profile_step [--resolution 64] [--batch 64] [--steps 3]`` prints, per loop, the
operators with the largest self CPU time (share of the profiled steps) as a markdown table.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile


def top_ops(fn, steps: int = 3, top: int = 10) -> tuple[list[tuple[str, float, float]], float]:
    """[(op, self ms per step, share)], total ms per step; ``fn`` is one step."""
    fn()
    fn()  # warm-up: allocator, oneDNN primitive caches, DataLoader workers
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            fn()
    agg: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        agg[e.key] += e.self_cpu_time_total / 1000.0
    total = sum(agg.values())
    rows = sorted(agg.items(), key=lambda kv: -kv[1])[:top]
    return [(k, v / steps, v / total) for k, v in rows], total / steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--data", default=None)
    a = p.parse_args(argv)
    from ..data import load_dataset
    from ..train import Trainer
    from .speed import TextbookSide, ours_config, resolve_folder
    folder = resolve_folder(a.data, 10_000)
    ds = load_dataset(str(folder), a.resolution, channels=3)
    cfg = ours_config(folder, a.resolution, a.batch)
    dev = torch.device("cpu")
    threads = torch.get_num_threads()
    tb = TextbookSide(folder, a.resolution, a.batch, dev, threads)
    loops = {"textbook": lambda: tb.iterate(1)}
    for name, fast in (("ours (fast path)", True), ("ours (plain path)", False)):
        t = Trainer(cfg, ds, fast_path=fast)
        loops[name] = (lambda t=t: (torch.set_num_threads(t.threads), t.step()))
    try:
        for name, fn in loops.items():
            rows, total = top_ops(fn, a.steps)
            print(f"\n### {name}, {a.resolution}x{a.resolution}, batch {a.batch}: {total:.0f} ms CPU-op time per step\n")
            print("| op | self ms / step | share |\n|---|---|---|")
            for k, ms, share in rows:
                print(f"| `{k}` | {ms:.1f} | {share:.0%} |")
    finally:
        tb.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
