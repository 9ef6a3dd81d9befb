"""Worker for test_distributed: one training step on a fixed global batch, saving D's and G's gradients.

Run plainly (1 process, the whole batch of 2B) or under torchrun (each rank its B-slice); with
correct DDP + synchronised BatchNorm + per-rank penalties, the all-reduced gradients are equal.
"""
import sys

import torch

from core.config import TrainConfig
from core.data import load_dataset
from core.train import Trainer
from core.train.distributed import init_process_group, shutdown, world_from_env

B = 4  # per rank


def main(out: str, loss: str) -> None:
    rank, world, _ = world_from_env()
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=B * 2 // world,
                      loss=loss, d_norm="batch" if loss == "bce" else "none", device="cpu", threads=1, ema=0.0,
                      r1_weight=1.0 if loss == "hinge" else 0.0)
    device = init_process_group(cfg) if world > 1 else torch.device("cpu")
    ds = load_dataset("shapes", 16)
    gen = torch.Generator().manual_seed(123)
    real = ds.images[:2 * B].float() / 127.5 - 1
    z_d, z_g = torch.randn(2 * B, 16, generator=gen), torch.randn(2 * B, 16, generator=gen)
    alpha = torch.rand(2 * B, 1, 1, 1, generator=gen)
    sl = slice(rank * B, (rank + 1) * B) if world > 1 else slice(0, 2 * B)
    t = Trainer(cfg, ds, None, rank=rank, world_size=world, device=device)
    t.sampler.next = lambda: (real[sl].clone(), None)
    zs = iter([z_d[sl], z_g[sl]])
    t._noise = lambda n: (next(zs).clone(), None)
    import core.losses as losses
    real_rand = torch.rand
    losses.torch.rand = lambda *a, **k: alpha[sl].clone() if a and tuple(a[0]) == tuple(alpha[sl].shape) else real_rand(*a, **k)
    grads = {}
    for name, opt, net in (("d", t.opt_d, t.D), ("g", t.opt_g, t.G)):
        orig = opt.step

        def step(*a, _orig=orig, _name=name, _net=net, **k):
            grads[_name] = {n: p.grad.detach().clone() for n, p in _net.named_parameters() if p.grad is not None}
            return _orig(*a, **k)
        opt.step = step
    out_vals = t.step()
    losses.torch.rand = real_rand
    if rank == 0:
        torch.save({"grads": grads, "loss_d": float(out_vals["loss/d"])}, out)
    shutdown(t)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
