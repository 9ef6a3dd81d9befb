"""rpgan (relativistic pairing) and R2: values, signs and gradients checked by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.losses import get_loss, r1_penalty_fp32, r2_penalty_fp32


def test_rpgan_values_pair_each_real_with_its_fake():
    loss = get_loss("rpgan")
    r, f = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 1.0, -1.0])
    assert loss.d_loss(r, f).item() == pytest.approx(F.softplus(f - r).mean().item())
    assert loss.g_loss(f, real_logits=r).item() == pytest.approx(F.softplus(r - f).mean().item())
    # Equal logits: chance, log 2 on both sides, whatever their common value (shifts do not matter).
    for c in (-3.0, 0.0, 5.0):
        same = torch.full((4,), c)
        assert loss.d_loss(same, same).item() == pytest.approx(math.log(2)) == loss.chance_d_loss
    assert loss.d_loss(r + 7, f + 7).item() == pytest.approx(loss.d_loss(r, f).item())


def test_rpgan_gradient_signs():
    loss = get_loss("rpgan")
    r = torch.tensor([0.5, -0.2], requires_grad=True)
    f = torch.tensor([0.1, 0.3], requires_grad=True)
    loss.d_loss(r, f).backward()
    assert (r.grad < 0).all() and (f.grad > 0).all()  # D lowers its loss by ranking reals above fakes
    f2 = f.detach().clone().requires_grad_(True)
    loss.g_loss(f2, real_logits=r).backward()
    assert (f2.grad < 0).all()  # G raises its fakes' logits
    with pytest.raises(ValueError, match="real_logits"):
        loss.g_loss(f2)
    assert loss.g_needs_real and not get_loss("bce").g_needs_real


def test_r2_is_r1_on_fakes_for_a_linear_critic():
    w = torch.randn(3 * 4 * 4)

    def D(x, y=None):
        return x.flatten(1) @ w + 0.0 * x.flatten(1).pow(2).sum(1)
    fake = torch.randn(5, 3, 4, 4)
    assert r2_penalty_fp32(D, fake).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    assert r2_penalty_fp32(D, fake).item() == pytest.approx(r1_penalty_fp32(D, fake).item())
