"""Trainer paths that used to break or silently do the wrong thing: compile + R1, R1 under
autocast, and the instance-noise schedule under a minutes budget, a resume and a fork."""
from __future__ import annotations

import math

import pytest
import torch

from core.config import TrainConfig
from core.data import load_dataset
from core.losses import r1_penalty, r1_penalty_fp32
from core.train import Trainer


def _cfg(**kw) -> TrainConfig:
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=100,
                device="cpu", threads=1, ema=0.0)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def shapes16():
    return load_dataset("shapes", 16)


def test_r1_from_its_own_eager_pass_equals_r1_through_the_training_forward(shapes16):
    t = Trainer(_cfg(r1_weight=1.0), shapes16)
    x, _ = t.sampler.next()
    x_req = x.detach().requires_grad_(True)
    through_forward = r1_penalty(t.D(x_req, None), x_req)
    own_pass = r1_penalty_fp32(t.D, x, None)
    assert float(through_forward.detach()) > 0
    torch.testing.assert_close(own_pass, through_forward, rtol=1e-5, atol=1e-9)


def test_compile_with_r1_trains(shapes16):
    """torch.compile's aot_autograd has no double backward: R1 through the compiled D failed on
    the first step ('does not currently support double backward')."""
    t = Trainer(_cfg(compile=True, r1_weight=1.0, steps=3), shapes16)
    outs = [t.step() for _ in range(2)]
    for out in outs:
        assert all(math.isfinite(float(v)) for v in out.values())
        assert float(out["r1"]) > 0
    assert t.step_count == 2


def test_r1_is_computed_in_fp32_with_autocast_off(shapes16):
    """Under mixed precision the penalty's inner gradient is not loss-scaled: R1's D pass must run
    in fp32 with autocast off, as the gradient penalty's does (it ran under autocast before)."""
    t = Trainer(_cfg(precision="bf16", r1_weight=1.0), shapes16)
    assert t.precision.autocast_dtype is torch.bfloat16
    seen = []

    def record(_module, args):
        x = args[0]
        if x.is_leaf and x.requires_grad:  # the penalty's input (G's fakes are never leaves)
            seen.append((torch.is_autocast_enabled("cpu"), x.dtype))

    handle = t.D.register_forward_pre_hook(record)
    try:
        out = t.step()
    finally:
        handle.remove()
    assert seen, "no D pass on a gradient-requiring real batch: R1 was not computed"
    assert all(not ac and dt == torch.float32 for ac, dt in seen), seen
    assert math.isfinite(float(out["r1"])) and float(out["r1"]) > 0


# ----------------------------------------------------------------------- instance noise schedule

def noise(t: Trainer) -> float:
    """The std of the noise D's input gets now, measured on a blank batch (no augmentation)."""
    return float(t._d_input(torch.zeros(128, 1, 32, 32)).std())


def test_instance_noise_anneals_over_a_minutes_budget(shapes16):
    """A minutes budget ends the run long before a large ``steps``: the noise must reach 0 with it
    (it followed steps only, so it barely decayed in a time-budgeted run)."""
    t = Trainer(_cfg(instance_noise=0.2, steps=1_000_000, minutes=1.0), shapes16)
    t.step_count, t.train_seconds = 10, 30.0
    assert noise(t) == pytest.approx(0.1, rel=0.02)
    t.train_seconds = 60.0
    assert noise(t) == 0.0
    t2 = Trainer(_cfg(instance_noise=0.2, steps=100), shapes16)
    t2.step_count = 25
    assert noise(t2) == pytest.approx(0.15, rel=0.02)  # steps still rule without a budget


def test_instance_noise_stays_continuous_across_a_resume_with_more_steps(shapes16):
    a = Trainer(_cfg(instance_noise=0.2, steps=100), shapes16)
    a.step_count = 50
    assert noise(a) == pytest.approx(0.1, rel=0.02)
    state = a.state_dict()
    b = Trainer(_cfg(instance_noise=0.2, steps=200), shapes16)
    b.load_state_dict(state)
    assert noise(b) == pytest.approx(0.1, rel=0.02)  # no jump back up (it was 0.15 before)
    b.step_count = 125
    assert noise(b) == pytest.approx(0.05, rel=0.02)
    b.step_count = 200
    assert noise(b) == 0.0
    # ... and the anchor travels with later checkpoints: a second resume with the same plan agrees.
    b.step_count = 150
    c = Trainer(_cfg(instance_noise=0.2, steps=200), shapes16)
    c.load_state_dict(b.state_dict())
    assert noise(c) == pytest.approx(0.1 * 50 / 150, rel=0.02)


def test_instance_noise_with_an_unchanged_plan_is_the_uninterrupted_line(shapes16):
    a = Trainer(_cfg(instance_noise=0.2, steps=100), shapes16)
    a.step_count = 40
    b = Trainer(_cfg(instance_noise=0.2, steps=100), shapes16)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(0)
    xa = a._d_input(torch.zeros(8, 1, 16, 16))
    torch.manual_seed(0)
    xb = b._d_input(torch.zeros(8, 1, 16, 16))
    assert torch.equal(xa, xb)  # bit for bit: resume = uninterrupted run


def test_a_fork_that_adds_instance_noise_starts_at_the_chosen_value(shapes16):
    src = Trainer(_cfg(steps=100), shapes16)
    src.step_count = 60
    fork = Trainer(_cfg(instance_noise=0.1, steps=160), shapes16)
    fork.load_state_dict(src.state_dict(), weights_only=True)
    assert noise(fork) == pytest.approx(0.1, rel=0.02)  # the fix's full value (was 0.1 * 100/160)
    fork.step_count = 110
    assert noise(fork) == pytest.approx(0.05, rel=0.02)


# ----------------------------------------------------------------------- RMSprop under GradScaler

def test_scaler_aware_rmsprop_matches_rmsprop_and_skips_inf_steps_exactly():
    """fp16 + RMSprop (wgan) used GradScaler's .item() check per step; ours takes the inf flag as a
    tensor. Finite steps must equal torch's RMSprop on unscaled gradients; an inf step must leave
    weights and optimiser state untouched (also on the very first step)."""
    import copy

    from core.train.rmsprop import ScalerAwareRMSprop
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    ref = copy.deepcopy(net)
    opt, ref_opt = ScalerAwareRMSprop(net.parameters(), lr=1e-2), torch.optim.RMSprop(ref.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    x = torch.randn(16, 4)

    def scaled_step(inputs):
        opt.zero_grad()
        scaler.scale(net(inputs).pow(2).mean()).backward()
        scaler.step(opt)
        scaler.update()

    scaled_step(x * float("inf"))  # a first step with inf gradients: nothing may change
    for a, b in zip(net.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    assert all(float(s["square_avg"].abs().sum()) == 0 for s in opt.state.values())
    for _ in range(3):
        scaled_step(x)
        ref_opt.zero_grad()
        ref(x).pow(2).mean().backward()
        ref_opt.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    before = [p.clone() for p in net.parameters()]
    state = [s["square_avg"].clone() for s in opt.state.values()]
    scale = scaler.get_scale()
    scaled_step(x * float("nan"))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(torch.equal(a, s["square_avg"]) for a, s in zip(state, opt.state.values()))
    assert scaler.get_scale() == scale / 2  # the scaler saw the inf and backed off, as with any optimiser
