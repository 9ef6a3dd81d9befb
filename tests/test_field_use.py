"""core.field_use: the Train form disables a field exactly when training ignores its value."""
from __future__ import annotations

import pytest
import torch

from core.config import LOSSES, TrainConfig
from core.data.dataset import ImageDataset
from core.field_use import unused_fields
from core.losses import get_loss
from core.train import Trainer

LOSS_FIELDS = ("gp_weight", "gp_one_sided", "clip_value", "label_smoothing", "g_saturating", "beta1", "beta2")

# What each loss uses, written out by hand: the rule must say the same.
USES = {
    "bce": {"label_smoothing", "g_saturating", "beta1", "beta2"},
    "lsgan": {"label_smoothing", "beta1", "beta2"},
    "hinge": {"beta1", "beta2"},
    "wgan": {"clip_value"},
    "wgan-gp": {"gp_weight", "gp_one_sided", "beta1", "beta2"},
    "rpgan": {"beta1", "beta2"},
}


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_fields_table(loss):
    unused = unused_fields({"loss": loss})
    assert {f for f in LOSS_FIELDS if f not in unused} == USES[loss]


def _tiny_trainer(**over) -> Trainer:
    cfg = TrainConfig(resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=4, device="cpu", threads=1,
                      ema=0.0, **over)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Trainer(cfg, ImageDataset(images, None, [], 3, 16, "t", "t"))


@pytest.mark.parametrize("loss", LOSSES)
def test_the_rule_matches_what_training_does(loss):
    """Ask the code, not the table: does the value change the loss, the optimiser, the weights?"""
    d_norm = "layer" if loss == "wgan-gp" else "auto"
    t = _tiny_trainer(loss=loss, d_norm=d_norm, clip_value=0.001)
    out = t.step()
    lv = get_loss(loss)
    real, fake = torch.randn(6), torch.randn(6)
    used = set()
    if not torch.equal(lv.d_loss(real, fake, real_target=0.9), lv.d_loss(real, fake, real_target=1.0)):
        used.add("label_smoothing")
    if not torch.equal(lv.g_loss(fake, saturating=True, real_logits=real),
                       lv.g_loss(fake, saturating=False, real_logits=real)):
        used.add("g_saturating")
    if isinstance(t.opt_d, torch.optim.Adam):
        used |= {"beta1", "beta2"}
    if "gp" in out:
        used |= {"gp_weight", "gp_one_sided"}
    if all(p.abs().max() <= 0.001 for p in t.D.parameters()):  # clipped; initial weights are ~0.02
        used.add("clip_value")
    unused = unused_fields({"loss": loss, "d_norm": d_norm})
    assert {f for f in LOSS_FIELDS if f not in unused} == used


@pytest.mark.parametrize("values, device, off", [
    ({"arch": "dcgan"}, None, set()),
    ({"arch": "mlp"}, None, {"d_norm"}),
    ({"arch": "resnet-sn"}, None, {"d_norm", "spectral_norm"}),
    ({"arch": "fastgan"}, None, {"d_norm", "spectral_norm", "minibatch_std"}),
    ({"eval_every": 0}, None, {"eval_samples", "eval_metric"}),
    ({"eval_every": 500}, None, set()),
    ({}, "cpu", set()),
    ({}, "cuda", {"threads"}),
    ({}, "mps", {"threads"}),
])
def test_architecture_schedule_and_device_rules(values, device, off):
    fields = {"d_norm", "spectral_norm", "eval_samples", "eval_metric", "threads", "minibatch_std", "r1_weight",
              "ema", "diffaug", "instance_noise", "feature_matching", "n_critic", "lr_g", "lr_d", "compile",
              "ada_target", "r2_weight", "replay", "pac", "minibatch_disc"}
    assert set(unused_fields(values, device)) & fields == off


def test_an_unknown_loss_leaves_the_loss_fields_to_the_validation_error():
    assert not set(unused_fields({"loss": "nope"})) & set(LOSS_FIELDS)
