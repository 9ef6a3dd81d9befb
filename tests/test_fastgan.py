"""core.models.fastgan: shapes at every resolution, the skip-layer gates, the self-supervised decoders, export parity."""
from __future__ import annotations

import pytest
import torch

from core.config import TrainConfig
from core.models import fastgan as fg


def models(r=16, width=16, latent=16, classes=0, channels=3):
    torch.manual_seed(0)
    cfg = TrainConfig(resolution=r, g_width=width, d_width=width, latent_dim=latent)
    return fg.build_fastgan(cfg, channels, classes)


@pytest.mark.parametrize("r", [16, 32, 64, 128])
def test_shapes_and_ranges(r):
    g, d = models(r)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 3, r, r) and x.abs().max() <= 1
    logits, rec = d(x, return_aux=True)
    assert logits.shape == (3,) and rec.dim() == 0 and rec > 0
    assert d.features(x).shape == (3, d.feature_dim)
    d.eval()  # (training mode moves BatchNorm statistics and spectral norm's power iteration per call)
    assert torch.allclose(d(x), d(x, return_aux=True)[0])  # the aux path changes nothing about the logits


def test_skip_layer_excitation_gates_the_high_map_channelwise():
    sle = fg.SkipExcitation(8, 6)
    low, high = torch.randn(2, 8, 8, 8), torch.randn(2, 6, 32, 32)
    gate = sle.gate(low)
    assert gate.shape == (2, 6, 1, 1) and (gate > 0).all() and (gate < 1).all()
    assert torch.allclose(sle(low, high), high * gate)
    g, _ = models(256, width=8)
    assert g.sle_from == {64: 4, 128: 8, 256: 16}  # the paper's pairs at 256 px
    g32, _ = models(32)
    assert g32.sle_from == {16: 4, 32: 4}


def test_the_decoders_learn_to_rebuild_real_images():
    """D's reconstruction loss is trainable: a few Adam steps on one batch lower it a lot."""
    _, d = models(32)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    opt = torch.optim.Adam(d.parameters(), 2e-3)
    torch.manual_seed(1)
    first = None
    for _ in range(40):
        _, rec = d(x, return_aux=True)
        first = float(rec) if first is None else first
        opt.zero_grad()
        rec.backward()
        opt.step()
    assert float(rec) < 0.6 * first, (first, float(rec))


def test_conditional_generator_and_projection_discriminator():
    g, d = models(16, classes=3)
    y = torch.tensor([0, 1, 2])
    z = torch.randn(1, 16).expand(3, 16)
    x = g(z, y)
    assert not torch.allclose(x[0], x[1])  # the class changes the image for one z
    assert d(x, y).shape == (3,)
    with pytest.raises(ValueError, match="labels"):
        g(z)


def test_samples_are_deterministic_in_eval_mode():
    g, _ = models(32)
    g.eval()
    z = torch.randn(4, 16)
    assert torch.equal(g(z), g(z))


def test_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    g, _ = models(32)
    g.eval()
    z = torch.randn(2, 16)
    path = tmp_path / "g.onnx"
    torch.onnx.export(g, (z,), str(path), input_names=["z"], output_names=["images"],
                      dynamic_axes={"z": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(str(path))
    zz = torch.randn(3, 16)
    got = sess.run(None, {"z": zz.numpy()})[0]
    assert abs(got - g(zz).detach().numpy()).max() <= 1e-4
