"""core.data.ada: the augmentation probability follows r_t = E[sign(D(real))], the ops are exact and differentiable."""
from __future__ import annotations

import pytest
import torch

from core.data.ada import AdaptiveAugment


def batch(b=16, c=3, r=16, seed=0):
    return torch.rand((b, c, r, r), generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_zero_is_the_identity():
    x = batch()
    assert torch.equal(AdaptiveAugment(0.6, p=0.0)(x, torch.Generator().manual_seed(1)), x)


def test_p_one_changes_every_image_and_gradients_reach_the_pixels():
    x = batch().requires_grad_(True)
    out = AdaptiveAugment(0.6, p=1.0)(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    assert ((out - x).abs().flatten(1).amax(1) > 1e-3).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and (x.grad.abs().flatten(1).sum(1) > 0).all()


def test_each_geometric_op_is_the_exact_transform_where_chosen():
    aug, x = AdaptiveAugment(0.6), batch(b=4)
    on = torch.tensor([True, False, True, False])
    f = aug._xflip(x, on, None)
    assert torch.equal(f[0], x[0].flip(2)) and torch.equal(f[1], x[1])
    r = aug._rot90(x, on, torch.Generator().manual_seed(3))
    for i in range(4):
        turns = [k for k in range(4) if torch.equal(r[i], torch.rot90(x[i], k, dims=(1, 2)))]
        assert turns and (not on[i] and turns == [0] or on[i])
    t = aug._translate(x, ~on.clone().fill_(True), None)  # none chosen: no shift
    assert torch.equal(t, x)


def test_probability_is_per_image():
    aug = AdaptiveAugment(0.6, p=0.5)
    x = batch(b=2000, c=1, r=4)
    g = torch.Generator().manual_seed(0)
    on = torch.rand((2000,), generator=g) < aug.p
    flipped = (aug._xflip(x, on, None) != x).flatten(1).any(1).float().mean()
    assert 0.45 < float(flipped) < 0.55


def test_p_rises_when_d_overfits_and_falls_when_it_does_not():
    aug = AdaptiveAugment(0.6, interval=4, ada_images=1000)
    for _ in range(4):
        aug.observe(torch.full((10,), 3.0))          # r_t = 1 > 0.6: D is sure of every real
    assert float(aug.rt) == 1.0 and float(aug.p) == pytest.approx(40 / 1000)
    for _ in range(3):
        aug.observe(torch.full((10,), -1.0))
    assert float(aug.p) == pytest.approx(0.04)        # adjusts only every 4 calls
    for _ in range(40):
        aug.observe(torch.full((10,), -1.0))          # r_t = -1 < 0.6
    assert float(aug.p) == 0.0 and float(aug.rt) == -1.0  # clamped at 0


def test_fixed_p_never_moves_and_state_round_trips():
    aug = AdaptiveAugment(0.6, p=0.7, fixed=True)
    for _ in range(8):
        aug.observe(torch.full((4,), 1.0))
    assert float(aug.p) == pytest.approx(0.7)
    a = AdaptiveAugment(0.6, interval=4, ada_images=100)
    for _ in range(6):
        a.observe(torch.tensor([1.0, 1.0, -1.0]))
    b = AdaptiveAugment(0.6, interval=4, ada_images=100)
    b.load_state_dict(a.state_dict())
    for aug_ in (a, b):
        for _ in range(2):
            aug_.observe(torch.tensor([1.0, 1.0, 1.0]))
    assert float(a.p) == float(b.p) and float(a.rt) == float(b.rt) and a.state_dict() == b.state_dict()


def test_target_is_validated():
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="ada_target"):
            AdaptiveAugment(bad)
