"""Minibatch discrimination, PacGAN packing and experience replay: the maths of each, checked by hand."""
from __future__ import annotations

import pytest
import torch

from core.models.tricks import MinibatchDiscrimination, PackedDiscriminator
from core.train.replay import ReplayBuffer


def test_minibatch_discrimination_is_the_papers_closeness():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(6, kernels=3, dims=2)
    f = torch.randn(4, 6)
    m = (f @ mbd.T).view(4, 3, 2)
    want = torch.zeros(4, 3)
    for i in range(4):
        for j in range(4):
            if i != j:
                want[i] += torch.exp(-(m[i] - m[j]).abs().sum(dim=1))
    assert torch.allclose(mbd.closeness(f), want, atol=1e-6)
    assert torch.equal(mbd(f), torch.zeros(4))  # zero-initialised output: a no-op at the start


def test_minibatch_discrimination_sees_a_collapsed_batch():
    torch.manual_seed(1)
    mbd = MinibatchDiscrimination(8, kernels=4, dims=3)
    varied, same = torch.randn(6, 8), torch.randn(1, 8).expand(6, 8)
    assert (mbd.closeness(same) > mbd.closeness(varied) + 1).all()  # identical samples: each o = B - 1
    assert torch.allclose(mbd.closeness(same), torch.full((6, 4), 5.0))


class _Inner(torch.nn.Module):
    resolution = 4
    feature_dim = 2

    def forward(self, x):
        return x.flatten(1).sum(1)

    def features(self, x):
        return x.flatten(1)[:, :2]


def test_pacgan_packs_consecutive_samples_along_channels():
    d = PackedDiscriminator(_Inner(), pac=2, channels=1)
    x = torch.arange(5 * 16, dtype=torch.float).view(5, 1, 4, 4)
    packed = d.pack(x)
    assert packed.shape == (2, 2, 4, 4)  # the fifth image is dropped
    assert torch.equal(packed[1, 0], x[2, 0]) and torch.equal(packed[1, 1], x[3, 0])
    assert d(x).shape == (2,) and d.features(x).shape == (2, 2)
    assert d.pack(x[:1]).shape == (1, 2, 4, 4)  # smaller than a pack: repeated to fill one


def test_replay_mixes_the_asked_fraction_of_past_fakes():
    buf = ReplayBuffer(0.25, batch_size=8, capacity=8)
    first = torch.full((8, 1, 2, 2), 1.0)
    assert torch.equal(buf.mix(first), first)  # nothing stored yet: the batch is unchanged
    second = torch.full((8, 1, 2, 2), 2.0)
    out = buf.mix(second, torch.Generator().manual_seed(0))
    assert (out[:2] == 1.0).all() and (out[2:] == 2.0).all()  # 2 of 8 from the past
    assert buf.filled == 4
    with pytest.raises(ValueError, match="replay"):
        ReplayBuffer(1.0, 8)


def test_replay_keeps_the_newest_when_full_and_round_trips():
    buf = ReplayBuffer(0.5, batch_size=4, capacity=4)
    for v in range(1, 5):
        buf.mix(torch.full((4, 1, 1, 1), float(v)))
    assert sorted(buf.store.flatten().tolist()) == [3.0, 3.0, 4.0, 4.0]  # the oldest were overwritten
    other = ReplayBuffer(0.5, batch_size=4, capacity=4)
    other.load_state_dict(buf.state_dict())
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x = torch.full((4, 1, 1, 1), 9.0)
    assert torch.equal(buf.mix(x, g1), other.mix(x, g2))


@pytest.mark.parametrize("arch", ["dcgan", "resnet-sn"])
def test_attention_sits_at_the_asked_size_in_g_and_d(arch):
    from core.config import ConfigError, TrainConfig
    from core.models import SelfAttention, build_models
    cfg = TrainConfig(arch=arch, resolution=32, g_width=8, d_width=8, latent_dim=16, attention=16).validate()
    G, D = build_models(cfg, 3)
    sizes = {}
    for name, net in (("G", G), ("D", D)):
        for m in net.modules():
            if isinstance(m, SelfAttention):
                m.register_forward_hook(lambda mod, i, o, n=name: sizes.update({n: o.shape[-1]}))  # returns None
        assert sum(isinstance(m, SelfAttention) for m in net.modules()) == 1
    x = G(torch.randn(2, 16))
    D(x)
    assert sizes == {"G": 16, "D": 16}
    plain = build_models(cfg.replace(attention=0), 3)
    assert not any(isinstance(m, SelfAttention) for net in plain for m in net.modules())
    with pytest.raises(ConfigError, match="attention"):
        cfg.replace(attention=32).validate()  # not below half the resolution
    with pytest.raises(ConfigError, match="attention"):
        cfg.replace(attention=12).validate()


def test_pac_and_minibatch_disc_through_build_models():
    from core.config import ConfigError, TrainConfig
    from core.models import build_models
    for arch in ("dcgan", "resnet-sn", "mlp", "fastgan", "stylegan2"):
        cfg = TrainConfig(arch=arch, resolution=16, g_width=8, d_width=8, latent_dim=16, pac=2, minibatch_disc=True)
        G, D = build_models(cfg.validate(), 3)
        x = G(torch.randn(6, 16))
        assert D(x).shape == (3,), arch
        assert D.inner.mbd is not None
    with pytest.raises(ConfigError, match="multiple of pac"):
        TrainConfig(batch_size=10, pac=3).validate()
    with pytest.raises(ConfigError, match="pac"):
        TrainConfig(pac=2, conditional=True).validate()
