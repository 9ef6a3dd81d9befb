"""The small-data tricks inside a real Trainer step: fastgan's reconstruction, ADA, rpgan + R2, replay, PacGAN, minibatch discrimination; resume exact with ADA and replay."""
from __future__ import annotations

import pytest
import torch

from core.data import load_dataset
from core.data.dataset import ImageDataset
from core.runs import load_run
from core.train import Trainer, create_run, resume_run, run_training


@pytest.fixture(scope="module")
def shapes16():
    return load_dataset("shapes", 16)


def _step_twice(cfg, ds):
    t = Trainer(cfg, ds)
    t.step()
    out = t.step()
    for k, v in out.items():
        assert torch.isfinite(v).all(), (k, v)
    return t, out


def test_fastgan_trains_its_decoders_on_real_images(tiny_cfg, shapes16):
    t = Trainer(tiny_cfg.replace(arch="fastgan", loss="hinge"), shapes16)
    before = {k: v.clone() for k, v in t.D.decode_whole.state_dict().items()}
    out = t.step()
    assert "loss/recon" in out and out["loss/recon"] > 0
    changed = [k for k, v in t.D.decode_whole.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed)  # the reconstruction reaches the decoders
    off = Trainer(tiny_cfg.replace(arch="fastgan", recon_weight=0.0), shapes16)
    assert "loss/recon" not in off.step()


def test_ada_reports_p_and_moves_it_from_d_real(tiny_cfg, shapes16):
    t = Trainer(tiny_cfg.replace(ada_target=0.6), shapes16)
    t.terms.ada.ada_images = 64  # react within a few steps (the real rate is 100k images per unit of p)
    ps = []
    for _ in range(12):
        out = t.step()
        ps.append(float(out.get("aug/p", 0.0)))
    assert "aug/rt" in out and -1 <= float(out["aug/rt"]) <= 1
    assert any(p != 0.0 for p in ps)  # p left 0 in one direction or the other... (clamped at 0 below)
    assert all(0.0 <= p <= 1.0 for p in ps)


def test_rpgan_with_r1_and_r2(tiny_cfg, shapes16):
    _, out = _step_twice(tiny_cfg.replace(loss="rpgan", r1_weight=0.1, r2_weight=0.1), shapes16)
    assert "r2" in out and "r1" in out and out["r2"] >= 0


def test_replay_pac_and_minibatch_discrimination_train(tiny_cfg, shapes16):
    t, _ = _step_twice(tiny_cfg.replace(replay=0.25), shapes16)
    assert t.replay.filled == 4  # 2 of 8 per step, two steps
    t, out = _step_twice(tiny_cfg.replace(pac=2), shapes16)
    assert t.D.pac == 2 and 0 <= float(out["d/real"]) <= 1
    t = Trainer(tiny_cfg.replace(minibatch_disc=True), shapes16)
    w0 = t.D.mbd.out.weight.clone()
    t.step()
    assert not torch.equal(t.D.mbd.out.weight, w0)  # D learned to use it


def test_resume_with_ada_and_replay_equals_an_uninterrupted_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(steps=8, checkpoint_every=4, ada_target=0.6, replay=0.25, arch="fastgan", loss="rpgan",
                           r2_weight=0.1)
    straight = create_run(cfg, tmp_path / "a")
    run_training(straight)
    part = create_run(cfg, tmp_path / "b")
    assert run_training(part, should_stop=lambda: part.step_count >= 4) == "stopped"
    resumed = resume_run(part.store.path)
    assert run_training(resumed) == "finished"
    for k, v in straight.G.state_dict().items():
        torch.testing.assert_close(v, resumed.G.state_dict()[k], rtol=1e-5, atol=1e-6, msg=k)
    assert float(straight.terms.ada.p) == pytest.approx(float(resumed.terms.ada.p))
    assert straight.replay.filled == resumed.replay.filled
    rows = load_run(part.store.path).metrics()
    assert "aug/p" in rows[-1]


@pytest.mark.slow
def test_ada_at_high_p_does_not_leak_rotations_into_samples(tiny_cfg):
    """Every real image is bright at the top. With ADA's p held at 0.8 (rotations, flips, ... on 80% of
    what D sees, reals and fakes alike), G still learns upright images, not rotated ones."""
    g = torch.Generator().manual_seed(0)
    n, r = 256, 16
    x = (torch.rand((n, 1, r, r), generator=g) * 40).to(torch.uint8)
    x[:, :, : r // 2] += 200
    ds = ImageDataset(x, None, [], 1, r, "upright", "upright")
    t = Trainer(tiny_cfg.replace(ada_target=0.6, loss="hinge", lr_g=1e-3, lr_d=1e-3, batch_size=16, ema=0.0,
                                 g_width=16, d_width=16), ds)
    t.terms.ada.p.fill_(0.8)
    t.terms.ada.fixed = True
    for _ in range(300):
        t.step()
    t.G.eval()
    with torch.no_grad():
        imgs = t.G(torch.randn(64, t.cfg.latent_dim, generator=g))
    top, bottom = imgs[:, :, : r // 2].mean(dim=(1, 2, 3)), imgs[:, :, r // 2:].mean(dim=(1, 2, 3))
    assert (top > bottom).float().mean() >= 0.9, (top - bottom)


def test_the_monitor_charts_ada_and_the_new_terms():
    from studio.charts import chart_groups, pretty
    groups = {title: cols for title, cols, _ in chart_groups(["loss/d", "loss/g", "r1", "r2", "loss/recon", "aug/p",
                                                             "aug/rt", "d/real", "step"])}
    assert groups["Adaptive augmentation (ADA)"] == ["aug/p", "aug/rt"]
    assert {"r2", "loss/recon"} <= set(groups["Losses"]) and "Other" not in groups
    assert pretty("aug/p") == "augment probability p"
