"""CUDA only (skipped elsewhere): a training step makes no host sync, so the GPU never idles
waiting for Python. torch.cuda.set_sync_debug_mode("error") turns any synchronising call inside
the step (.item(), a device->host copy, a copy from pageable memory) into an exception."""
from __future__ import annotations

import pytest
import torch

from core.config import TrainConfig
from core.data import load_dataset
from core.train import Trainer

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CONFIGS = {
    "bce-bf16-diffaug-ema": dict(loss="bce", precision="bf16", diffaug="color,translation,cutout", ema=0.999),
    "hinge-r1-fp16": dict(loss="hinge", precision="fp16", r1_weight=1.0),
    "wgan-gp-fp32": dict(loss="wgan-gp", precision="fp32", n_critic=2),
    "wgan-clip-fp16": dict(loss="wgan", precision="fp16", n_critic=2),
    "conditional-instance-noise": dict(conditional=True, instance_noise=0.1, precision="bf16"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_training_steps_make_no_host_sync(name):
    kw = CONFIGS[name]
    data = "shapes"
    ds = load_dataset(data, 32)
    if kw.get("conditional") and ds.num_classes < 2:
        pytest.skip("the built-in data has no classes here")
    cfg = TrainConfig(data=data, resolution=32, g_width=16, d_width=16, latent_dim=32, batch_size=16, steps=100,
                      device="cuda", **kw)
    t = Trainer(cfg, ds)
    for _ in range(3):  # warm-up: cuDNN autotuning, lazy optimiser state, allocator growth
        t.step(want_grad_norms=True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(4):
            out = t.step(want_grad_norms=i == 3)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(torch.isfinite(v).all() for v in out.values()), out
