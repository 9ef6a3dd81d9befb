"""Tests for core.losses: values and signs on known logits, penalties on linear critics, registry errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.config import LOSSES, ConfigError
from core.losses import available_losses, clip_weights, feature_matching_loss, get_loss, gradient_penalty, r1_penalty

LN2 = math.log(2)


def close(t, v, tol=1e-6):
    return abs(float(t.detach() if torch.is_tensor(t) else t) - v) < tol


def test_registry_names():
    assert set(available_losses()) == set(LOSSES)
    with pytest.raises(ConfigError, match="valid: ") as e:
        get_loss("nope")
    assert e.value.field == "loss" and "wgan-gp" in str(e.value)


def test_flags():
    assert get_loss("wgan-gp").uses_gradient_penalty and not get_loss("wgan").uses_gradient_penalty
    assert get_loss("wgan").uses_weight_clipping and not get_loss("wgan-gp").uses_weight_clipping
    assert get_loss("wgan").prefers_optimizer == "rmsprop"
    assert {get_loss(n).prefers_optimizer for n in ("bce", "wgan-gp", "hinge", "lsgan")} == {"adam"}


def test_chance_values():
    zero = torch.zeros(4)
    half = torch.full((4,), 0.5)
    assert close(get_loss("bce").d_loss(zero, zero), 2 * LN2) and close(get_loss("bce").chance_d_loss, 2 * LN2)
    assert close(get_loss("lsgan").d_loss(half, half), get_loss("lsgan").chance_d_loss)
    assert close(get_loss("hinge").d_loss(zero, zero), get_loss("hinge").chance_d_loss)
    assert get_loss("wgan").chance_d_loss == 0


def test_bce():
    bce = get_loss("bce")
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    want = -torch.log(torch.sigmoid(r)).mean() - torch.log(1 - torch.sigmoid(f)).mean()
    assert close(bce.d_loss(r, f), want.item(), 1e-5)
    # One-sided smoothing: target 0.9 only changes the real term, and at logit 0 BCE is ln 2 whatever t.
    smooth = bce.d_loss(r, f, real_target=0.9)
    want_s = F.binary_cross_entropy(torch.sigmoid(r), torch.full((2,), 0.9)) - torch.log(1 - torch.sigmoid(f)).mean()
    assert close(smooth, want_s.item(), 1e-5) and smooth > bce.d_loss(r, f)
    assert close(bce.d_loss(torch.zeros(2), torch.zeros(2), 0.9), 2 * LN2)
    # D outputs are probabilities
    assert torch.allclose(bce.d_output(torch.tensor([0.0, 100.0])), torch.tensor([0.5, 1.0]))
    # Stable for huge logits (no log(0)).
    assert torch.isfinite(bce.d_loss(torch.tensor([-200.0]), torch.tensor([200.0])))


def test_bce_generator_losses():
    bce = get_loss("bce")
    f = torch.tensor([-2.0, 1.0])
    p = torch.sigmoid(f)
    assert close(bce.g_loss(f), -torch.log(p).mean().item(), 1e-5)  # non-saturating
    assert close(bce.g_loss(f, saturating=True), torch.log(1 - p).mean().item(), 1e-5)
    # Both decrease as D is fooled more (logit up), but the saturating one barely moves when D rejects fakes.
    x = torch.tensor([-8.0], requires_grad=True)
    (g_ns,) = torch.autograd.grad(bce.g_loss(x), x)
    (g_s,) = torch.autograd.grad(bce.g_loss(x, saturating=True), x)
    assert g_ns < 0 and g_s < 0 and abs(g_s) < 1e-3 < abs(g_ns)


def test_wgan_and_gp_share_objective():
    r, f = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.5])
    for name in ("wgan", "wgan-gp"):
        loss = get_loss(name)
        assert close(loss.d_loss(r, f), f.mean().item() - r.mean().item())
        assert close(loss.d_loss(r, f, real_target=0.9), loss.d_loss(r, f).item())  # smoothing ignored
        assert close(loss.g_loss(f), -f.mean().item())
        assert torch.equal(loss.d_output(r), r)


def test_hinge():
    h = get_loss("hinge")
    assert close(h.d_loss(torch.ones(3), -torch.ones(3)), 0.0)
    assert close(h.d_loss(torch.tensor([0.5, 2.0]), torch.tensor([0.0, -3.0])), 0.25 + 0.5)
    assert close(h.g_loss(torch.tensor([1.0, 2.0])), -1.5)


def test_lsgan():
    ls = get_loss("lsgan")
    assert close(ls.d_loss(torch.ones(2), torch.zeros(2)), 0.0)
    assert close(ls.d_loss(torch.tensor([0.0]), torch.tensor([1.0])), 1.0)
    assert close(ls.d_loss(torch.ones(2), torch.zeros(2), real_target=0.9), 0.5 * 0.01)
    assert close(ls.g_loss(torch.tensor([0.0, 1.0])), 0.25)


class LinearCritic(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, norm: float, shape=(1, 4, 4)):
        super().__init__()
        w = torch.randn(*shape)
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x, y=None):
        return (x * self.w).flatten(1).sum(1)


@pytest.mark.parametrize("norm", [1.0, 0.5, 3.0])
def test_gradient_penalty_linear_critic(norm):
    D = LinearCritic(norm)
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    pen, gnorm = gradient_penalty(D, real, fake)
    assert pen.dim() == 0 and close(gnorm, norm, 1e-4)
    assert abs(pen.item() - (norm - 1) ** 2) < (1e-6 if norm == 1 else 1e-4)
    pen1, _ = gradient_penalty(D, real, fake, one_sided=True)
    assert abs(pen1.item() - max(norm - 1, 0) ** 2) < 1e-4
    if norm < 1:
        assert pen1.item() == 0


def test_gradient_penalty_backpropagates_into_d():
    D = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    real = torch.randn(4, 1, 4, 4)
    fake = torch.randn(4, 1, 4, 4, requires_grad=True)  # the penalty must not reach G
    pen, _ = gradient_penalty(lambda x: D(x).flatten(), real, fake)
    pen.backward()
    # Every weight gets a gradient (the last bias cannot: it does not change the input gradient).
    for w in (D[1].weight, D[1].bias, D[3].weight):
        assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    assert fake.grad is None


def test_gradient_penalty_passes_labels():
    seen = []

    def D(x, y=None):
        seen.append(y)
        return x.flatten(1).sum(1)

    y = torch.tensor([1, 0])
    gradient_penalty(D, torch.randn(2, 3), torch.randn(2, 3), y=y)
    assert seen[-1] is y


def test_r1_linear_critic():
    D = LinearCritic(2.0)
    x = torch.randn(3, 1, 4, 4).requires_grad_(True)
    r1 = r1_penalty(D(x), x)
    assert close(r1, 4.0, 1e-4)
    r1.backward()
    assert D.w.grad is not None
    with pytest.raises(ValueError, match="require grad"):
        r1_penalty(D(torch.randn(2, 1, 4, 4)), torch.randn(2, 1, 4, 4))


def test_feature_matching():
    a = torch.randn(6, 10)
    assert feature_matching_loss(a, a.clone()) == 0
    b = a + 0.5
    assert close(feature_matching_loss(a, b), 10 * 0.25, 1e-5)
    real = a.clone().requires_grad_(True)
    fake = b.clone().requires_grad_(True)
    feature_matching_loss(real, fake).backward()
    assert real.grad is None and fake.grad is not None


def test_clip_weights():
    m = nn.Linear(3, 3)
    with torch.no_grad():
        m.weight.mul_(100)
    clip_weights(m, 0.01)
    assert m.weight.abs().max() <= 0.01 and m.bias.abs().max() <= 0.01
