"""The fast path changes speed, not mathematics; the speed benchmark's baseline is the textbook DCGAN."""
from __future__ import annotations

import pytest
import torch

from core.bench.textbook import Discriminator, Generator, TextbookDCGAN
from core.config import TrainConfig
from core.data import ImageDataset
from core.train import Trainer


def _dataset(n: int = 64, res: int = 16, channels: int = 3) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, res, res), dtype=torch.uint8, generator=g)
    return ImageDataset(images=images, labels=None, class_names=[], channels=channels, resolution=res,
                        fingerprint="test-fastpath", source="synthetic")


def _losses(fast: bool, cfg: TrainConfig, steps: int = 4) -> list[tuple[float, float]]:
    t = Trainer(cfg, _dataset(res=cfg.resolution), fast_path=fast)
    out = []
    for _ in range(steps):
        s = t.step(want_grad_norms=True)
        out.append((float(s["loss/d"]), float(s["loss/g"])))
    return out


@pytest.mark.parametrize("loss,d_norm", [("bce", "batch"), ("hinge", "none")])
def test_fast_and_plain_paths_give_the_same_losses(loss, d_norm):
    cfg = TrainConfig(data="shapes", resolution=16, arch="dcgan", loss=loss, d_norm=d_norm, g_width=8, d_width=8,
                      latent_dim=16, batch_size=8, ema=0.0, threads=1, device="cpu", seed=3)
    fast, plain = _losses(True, cfg), _losses(False, cfg)
    assert Trainer(cfg, _dataset()).channels_last  # the fast path really is a different path on CPU
    for (fd, fg), (pd, pg) in zip(fast, plain):
        assert fd == pytest.approx(pd, rel=1e-4, abs=1e-5)
        assert fg == pytest.approx(pg, rel=1e-4, abs=1e-5)


def test_fast_path_state_dict_loads_into_plain_path():
    cfg = TrainConfig(data="shapes", resolution=16, arch="dcgan", g_width=8, d_width=8, latent_dim=16,
                      batch_size=8, ema=0.999, threads=1, device="cpu")
    fast = Trainer(cfg, _dataset(), fast_path=True)
    fast.step()
    plain = Trainer(cfg, _dataset(), fast_path=False)
    plain.load_state_dict(fast.state_dict())
    torch.testing.assert_close(plain.sample_fixed(), fast.sample_fixed(), rtol=1e-4, atol=1e-5)


def test_textbook_dcgan_has_the_classic_parameter_counts():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(Generator(image_size=64)) == 3_576_704
    assert count(Discriminator(image_size=64)) == 2_765_568
    # The 32 px analogue drops one block at the wide end.
    assert count(Generator(image_size=32)) < count(Generator(image_size=64))
    assert Generator(image_size=32)(torch.randn(2, 100, 1, 1)).shape == (2, 3, 32, 32)
    assert Discriminator(image_size=32)(torch.randn(2, 3, 32, 32)).shape == (2, 1, 1, 1)


def test_our_dcgan_matches_the_textbook_architecture_at_64px():
    """Same parameter counts as the baseline, so the speed benchmark compares the same work."""
    from core.models import build_models
    cfg = TrainConfig(resolution=64, arch="dcgan", g_width=64, d_width=64, latent_dim=100, d_norm="batch")
    g, d = build_models(cfg, 3, 0)
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568


def test_textbook_iteration_runs():
    tb = TextbookDCGAN(image_size=32, nc=3)
    out = tb.iteration((torch.rand(4, 3, 32, 32) * 2 - 1, torch.zeros(4, dtype=torch.long)))
    assert out["batch"] == 4 and out["loss_d"] > 0 and out["loss_g"] > 0
