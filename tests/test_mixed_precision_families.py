"""The autocast path CUDA uses, run as bf16 on the CPU, for the families added after the first
mixed-precision work: stylegan2 (lazy R1, path length, demodulation), fastgan and progressive growing. Each trains a few steps with finite losses, fp32 master weights and an R1 that was computed."""
from __future__ import annotations

import math

import pytest
import torch

from core.config import preset
from core.data import load_dataset
from core.train import Trainer

SMALL = dict(data="shapes", resolution=16, batch_size=8, steps=10, device="cpu", threads=1, eval_every=0,
             precision="bf16")
CASES = {
    "stylegan2-small": ("stylegan2-small", dict(latent_dim=16, g_width=8, d_width=8, r1_every=2, pl_weight=2.0,
                                               pl_every=2)),
    "fastgan": ("fastgan", dict(resolution=32, latent_dim=16, g_width=8, d_width=8)),
    "progressive-dcgan": ("default", dict(latent_dim=16, g_width=8, d_width=8, progressive=True,
                                          progressive_start=4, fade_images=16, stable_images=16)),
}


@pytest.fixture(scope="module")
def shapes():
    return {r: load_dataset("shapes", r) for r in (16, 32)}


@pytest.mark.parametrize("case", list(CASES))
def test_family_trains_under_bf16_autocast(case, shapes):
    name, over = CASES[case]
    cfg = preset(name, **{**SMALL, **over})
    t = Trainer(cfg, shapes[cfg.resolution])
    assert t.precision.autocast_dtype is torch.bfloat16
    outs = [t.step() for _ in range(4)]
    for out in outs:
        assert all(math.isfinite(float(v)) for v in out.values()), out
    assert all(p.dtype == torch.float32 for p in t.G.parameters())  # master weights stay fp32
    if case == "stylegan2-small":  # lazy R1 every 2nd step and path length ran, in fp32, to finite values
        assert cfg.uses_r1 and any(float(o.get("r1", 0)) > 0 for o in outs), outs
    img = t.sample_fixed()
    assert torch.isfinite(img.float()).all()
