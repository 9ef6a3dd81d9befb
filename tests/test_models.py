"""Tests for core.models: shapes, labels, registry errors, the classic DCGAN recipe, SN and minibatch std."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from core.config import ConfigError, TrainConfig
from core.models import MinibatchStdDev, SelfAttention, available_archs, build_models, count_parameters

torch.set_num_threads(1)  # the test machine's CPU is shared; tiny nets are fastest single-threaded
ARCHS = ("mlp", "dcgan", "resnet-sn", "stylegan2", "fastgan", "r3gan")
LATENT = 8


def cfg(**kw) -> TrainConfig:
    base = dict(g_width=4, d_width=4, latent_dim=LATENT)
    return TrainConfig(**{**base, **kw})


def run(G, D, batch=3, y=None):
    z = torch.randn(batch, G.latent_dim)
    x = G(z, y)
    return x, D(x, y), D.features(x, y)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", [16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(arch, res, channels):
    G, D = build_models(cfg(arch=arch, resolution=res), channels)
    x, logits, feats = run(G, D)
    assert x.shape == (3, channels, res, res)
    if arch in ("stylegan2", "r3gan"):  # linear while training, as in the papers; samples (eval mode) are clamped
        with torch.no_grad():
            x = G.eval()(torch.randn(3, LATENT))
    assert x.min() >= -1 and x.max() <= 1
    assert logits.shape == (3,)
    assert feats.dim() == 2 and feats.shape[0] == 3
    for m in (G, D):
        assert (m.latent_dim, m.resolution, m.channels, m.num_classes) == (LATENT, res, channels, 0)


def test_dcgan_128():
    G, D = build_models(cfg(arch="dcgan", resolution=128), 3)
    x, logits, feats = run(G, D, batch=2)
    assert x.shape == (2, 3, 128, 128) and logits.shape == (2,) and feats.shape == (2, D.feature_dim)


def test_available_archs():
    assert available_archs() == ARCHS


@pytest.mark.parametrize("arch", ARCHS)
def test_conditional(arch):
    G, D = build_models(cfg(arch=arch, conditional=True), 3, num_classes=5)
    assert G.num_classes == D.num_classes == 5
    y = torch.tensor([0, 4, 2])
    x, logits, feats = run(G, D, y=y)
    assert x.shape == (3, 3, 32, 32) and logits.shape == (3,)
    # Labels are wired in: once embeddings are non-trivial (resnet-sn's conditional BN starts as the
    # identity), the same z with other labels gives other images.
    for m in G.modules():
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight)
    # BatchNorm's running statistics start at (0, 1): with N(0, 0.02) weights an eval-mode forward of
    # a deep G at init is nearly constant (fastgan), so let them track real batches first.
    with torch.no_grad():
        for _ in range(30):
            G(torch.randn(16, LATENT), torch.randint(0, 5, (16,)))
    G.eval()
    z = torch.randn(3, LATENT)
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, torch.tensor([1, 1, 1])))
    D.eval()
    with torch.no_grad():
        xs = torch.randn(3, 3, 32, 32)
        assert not torch.allclose(D(xs, y), D(xs, torch.tensor([1, 1, 1])))
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="conditional"):
        D(x)


def test_projection_features_do_not_need_labels():
    G, D = build_models(cfg(arch="resnet-sn", conditional=True), 3, num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    assert D.features(x).shape == (2, D.feature_dim)


def test_unconditional_ignores_labels():
    G, D = build_models(cfg(arch="dcgan"), 3, num_classes=10)  # conditional=False: classes unused
    G.eval()
    z = torch.randn(2, LATENT)
    with torch.no_grad():
        assert torch.equal(G(z), G(z, torch.tensor([1, 2])))


def test_unknown_arch_lists_valid():
    bad = TrainConfig().replace(arch="stylegan9")
    with pytest.raises(ConfigError, match="mlp, dcgan, resnet-sn") as e:
        build_models(bad, 3)
    assert e.value.field == "arch"


@pytest.mark.parametrize("n", [0, 1])
def test_conditional_needs_classes(n):
    with pytest.raises(ConfigError) as e:
        build_models(cfg(conditional=True), 3, num_classes=n)
    assert e.value.field == "conditional" and "two classes" in str(e.value)


def test_bad_z_shape():
    G, _ = build_models(cfg(), 3)
    with pytest.raises(ValueError, match="z of shape"):
        G(torch.randn(2, LATENT + 1))


# ---------------------------------------------------------------- the classic DCGAN tutorial recipe

def tutorial_nets(nz=100, ngf=64, ndf=64, nc=3):
    """The PyTorch DCGAN tutorial's netG / netD, written from its published definition."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return g, d


def layer_signature(modules):
    sig = []
    for m in modules:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            sig.append((type(m).__name__, m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                        m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            sig.append(("BN", m.num_features))
        elif isinstance(m, nn.LeakyReLU):
            sig.append(("LReLU", m.negative_slope))
        elif isinstance(m, (nn.ReLU, nn.Tanh)):
            sig.append(type(m).__name__)
    return sig


def test_classic_dcgan_matches_tutorial():
    c = TrainConfig(arch="dcgan", resolution=64, g_width=64, d_width=64, latent_dim=100, d_norm="batch")
    G, D = build_models(c, 3)
    tg, td = tutorial_nets()
    assert count_parameters(tg) == 3_576_704 and count_parameters(td) == 2_765_568
    assert count_parameters(G) == 3_576_704
    assert count_parameters(D) == 2_765_568
    assert layer_signature(G.modules()) == layer_signature(tg)
    assert layer_signature(D.modules()) == layer_signature(list(td)[:-1])  # ours returns logits: no Sigmoid
    # Same parameter names and shapes as the tutorial's netG, so its state dicts load.
    assert {k: v.shape for k, v in G.state_dict().items()} == \
        {"main." + k: v.shape for k, v in tg.state_dict().items()}
    # DCGAN init: conv N(0, 0.02), BN weight N(1, 0.02), bias 0.
    convs = [m.weight for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert all(abs(w.std().item() - 0.02) < 0.004 and abs(w.mean().item()) < 0.002 for w in convs)
    bns = [m for m in D.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(abs(b.weight.mean().item() - 1) < 0.01 and b.bias.abs().max() == 0 for b in bns)


# ---------------------------------------------------------------- tricks

def _sn_layers(D):
    return [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]


@pytest.mark.parametrize("arch,extra", [("dcgan", dict(spectral_norm=True)), ("mlp", dict(spectral_norm=True)),
                                        ("resnet-sn", {})])
def test_spectral_norm_applied(arch, extra):
    G, D = build_models(cfg(arch=arch, conditional=arch != "mlp", **extra), 3, num_classes=3)
    layers = _sn_layers(D)
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_no_spectral_norm_by_default():
    _, D = build_models(cfg(arch="dcgan"), 3)
    assert not any(parametrize.is_parametrized(m) for m in D.modules())


def test_d_norm_resolution():
    def norms(**kw):
        _, D = build_models(cfg(arch="dcgan", **kw), 3)
        return {type(m).__name__ for m in D.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))}
    assert norms() == {"BatchNorm2d"}
    assert norms(loss="wgan-gp") == set()
    assert norms(r1_weight=1.0) == set()
    assert norms(d_norm="layer", loss="wgan-gp") == {"GroupNorm"}
    with pytest.raises(ConfigError) as e:
        build_models(cfg(arch="dcgan", d_norm="batch", loss="wgan-gp"), 3)
    assert e.value.field == "d_norm"


def test_minibatch_std_adds_input_channel():
    for arch, last in (("dcgan", lambda D: D.final.in_channels), ("resnet-sn", lambda D: D.last.conv1.in_channels),
                       ("mlp", lambda D: D.final.in_features)):
        _, d0 = build_models(cfg(arch=arch), 3)
        G, d1 = build_models(cfg(arch=arch, minibatch_std=True), 3)
        assert last(d1) == last(d0) + 1
        assert d1(G(torch.randn(5, LATENT))).shape == (5,)  # 5: group size falls back to a divisor


def test_minibatch_std_layer():
    layer = MinibatchStdDev(group_size=4)
    x = torch.randn(6, 2, 3, 3)
    out = layer(x)
    assert out.shape == (6, 3, 3, 3) and torch.equal(out[:, :2], x)
    same = layer(torch.ones(4, 2, 3, 3))
    assert same[:, 2].abs().max() < 1e-3  # identical samples: no spread
    assert layer(torch.randn(3, 5)).shape == (3, 6)


def test_self_attention_starts_as_identity():
    x = torch.randn(2, 16, 4, 4)
    assert torch.allclose(SelfAttention(16)(x), x)


@pytest.mark.parametrize("arch", ["dcgan", "resnet-sn"])
def test_gradient_penalty_through_real_critic(arch):
    from core.losses import gradient_penalty
    G, D = build_models(cfg(arch=arch, resolution=16, loss="wgan-gp", conditional=True), 3, num_classes=2)
    y = torch.tensor([0, 1])
    real = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the penalty switches autocast off itself
        fake = G(torch.randn(2, LATENT), y)
        pen, gnorm = gradient_penalty(D, real, fake, y)
    assert pen.dtype == torch.float32 and torch.isfinite(pen) and gnorm > 0
    pen.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
