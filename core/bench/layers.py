"""Where the gap to the conv ceiling is: each DCGAN conv layer alone vs a whole training step.

``python -m core.bench.layers [--threads 2] [--batch 64]`` times, at 64x64, every conv / transposed
conv of the classic DCGAN (forward + backward, NCHW and NHWC) and one full ``Trainer.step()``,
and prints GFLOP/s next to the ceiling conv measured in the same process. A layer near the
ceiling on its own but a step far below it means the gap is between the convs (BatchNorm,
activations, optimiser, layout copies), not in them.
"""
from __future__ import annotations

import argparse
import functools
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _best(fn, reps: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def dcgan_layers(b: int) -> list[tuple[str, nn.Module, tuple[int, ...], bool]]:
    """(name, layer, input shape, needs input grad) for the 64 px DCGAN (ngf = ndf = 64)."""
    conv, convt = nn.Conv2d, nn.ConvTranspose2d
    return [("D1 conv 3→64", conv(3, 64, 4, 2, 1, bias=False), (b, 3, 64, 64), False),
            ("D2 conv 64→128", conv(64, 128, 4, 2, 1, bias=False), (b, 64, 32, 32), True),
            ("D3 conv 128→256", conv(128, 256, 4, 2, 1, bias=False), (b, 128, 16, 16), True),
            ("D4 conv 256→512", conv(256, 512, 4, 2, 1, bias=False), (b, 256, 8, 8), True),
            ("G2 convT 512→256", convt(512, 256, 4, 2, 1, bias=False), (b, 512, 4, 4), True),
            ("G3 convT 256→128", convt(256, 128, 4, 2, 1, bias=False), (b, 256, 8, 8), True),
            ("G4 convT 128→64", convt(128, 64, 4, 2, 1, bias=False), (b, 128, 16, 16), True),
            ("G5 convT 64→3", convt(64, 3, 4, 2, 1, bias=False), (b, 64, 32, 32), True)]


def ceiling_gflops() -> float:
    """The speed benchmark's ceiling conv (3x3, 256->512 channels, 16x16, batch 64), best layout."""
    x, w = torch.randn(64, 256, 16, 16), torch.randn(512, 256, 3, 3)
    flops = 2 * 64 * 512 * 256 * 16 * 16 * 9
    best = min(_best(functools.partial(torch.nn.functional.conv2d, x.contiguous(memory_format=f),
                                       w.contiguous(memory_format=f), padding=1))
               for f in (torch.contiguous_format, torch.channels_last))
    return flops / best / 1e9


def layer_rows(b: int) -> list[tuple[str, str, float, float]]:
    """(layer, layout, ms for forward + backward, GFLOP/s)."""
    rows = []
    for name, m, shape, need_dx in dcgan_layers(b):
        for fmt, label in ((torch.contiguous_format, "NCHW"), (torch.channels_last, "NHWC")):
            mm = m.to(memory_format=fmt)
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_(need_dx)
            g = torch.randn_like(mm(x))

            def fwd_bwd(mm=mm, x=x, g=g):
                mm.zero_grad(set_to_none=True)
                mm(x).backward(g)
            with FlopCounterMode(display=False) as fc:
                fwd_bwd()
            t = _best(fwd_bwd)
            rows.append((name, label, t * 1e3, fc.get_total_flops() / t / 1e9))
    return rows


def step_gflops(b: int, threads: int) -> tuple[float, float, float]:
    """(best ms, median ms, GFLOP/s at best) of our Trainer's step on Fashion-MNIST PNGs at 64 px."""
    from ..data import load_dataset
    from ..train import Trainer
    from .speed import count_flops, ours_config, resolve_folder
    folder = resolve_folder(None, 10_000)
    t = Trainer(ours_config(folder, 64, b, {"threads": threads}), load_dataset(str(folder), 64, channels=3))
    for _ in range(2):
        t.step()
    flops = count_flops(lambda: t.step())
    times = []
    for _ in range(6):
        a = time.perf_counter()
        t.step()
        times.append(time.perf_counter() - a)
    times.sort()
    return times[0] * 1e3, times[len(times) // 2] * 1e3, flops / times[0] / 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ceil = ceiling_gflops()
    print(f"\n{a.threads} thread(s), batch {a.batch}: ceiling conv {ceil:.0f} GFLOP/s\n")
    print("| layer (fwd + bwd) | layout | ms | GFLOP/s | ÷ ceiling |\n|---|---|---|---|---|")
    for name, label, ms, gf in layer_rows(a.batch):
        print(f"| {name} | {label} | {ms:.1f} | {gf:.0f} | {gf / ceil:.0%} |")
    best, med, gf = step_gflops(a.batch, a.threads)
    print(f"\nTrainer.step (fast path): best {best:.0f} ms, median {med:.0f} ms -> {gf:.0f} GFLOP/s at best "
          f"= {gf / ceil:.0%} of the ceiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
