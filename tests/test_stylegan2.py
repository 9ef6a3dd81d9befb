"""arch=stylegan2: layer maths (modulated conv, equalised lr, resampling), noise, w_avg, truncation, style
mixing, lazy R1 and path-length regularisation, exact resume, conditioning, export and the CLI."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.cli import main as cli_main
from core.config import ConfigError, TrainConfig, auto_r1_gamma, preset
from core.data.dataset import ImageDataset
from core.field_use import unused_fields
from core.generator import generate, latents, load_generator
from core.generator.sampling import layer_groups, mix_styles, parse_layers, style_mix_seeds, truncation_space
from core.models import build_models
from core.models.stylegan2 import W_AVG_BETA
from core.models.stylegan2_layers import (
    EqualConv2d,
    EqualLinear,
    blur_kernel,
    downsample2d,
    modulated_conv2d,
    upsample2d,
)
from core.train import Trainer, create_run, resume_run, run_training

torch.set_num_threads(1)  # tiny nets on a shared CPU: one thread is fastest
LATENT = 16


def cfg(**kw) -> TrainConfig:
    base = dict(arch="stylegan2", resolution=16, g_width=8, d_width=8, latent_dim=LATENT, mapping_layers=2,
                batch_size=4, device="cpu", threads=1, ema=0.0, eval_every=0)
    return TrainConfig(**{**base, **kw})


def trainer(**kw) -> Trainer:
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Trainer(cfg(**kw), ImageDataset(images, None, [], 3, 16, "t", "t"))


# ---------------------------------------------------------------- shapes and layer maths

@pytest.mark.parametrize("res", [16, 32, 64])
def test_shapes(res):
    G, D = build_models(cfg(resolution=res), 3)
    z = torch.randn(3, LATENT)
    ws = G.mapping(z)
    assert G.num_ws == 2 * int(math.log2(res)) - 2 and ws.shape == (3, G.num_ws, LATENT)
    x = G.synthesis(ws)
    assert x.shape == (3, 3, res, res) and G(z).shape == x.shape
    assert D(x).shape == (3,) and D.features(x).shape == (3, D.feature_dim)
    G.eval()
    with torch.no_grad():
        out = G(z)
    assert out.min() >= -1 and out.max() <= 1  # samples are clamped; training output is linear


def _naive_modconv(x, weight, styles, up):
    """The paper's definition, one sample at a time: w' = s * w, w'' = w' / ||w'||, conv (or up-conv + blur)."""
    out = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, :, None, None]
        w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        if up:
            y = F.conv_transpose2d(x[b:b + 1], w.transpose(0, 1), stride=2)
            c = y.shape[1]
            y = F.conv2d(y, (blur_kernel() * 4)[None, None].repeat(c, 1, 1, 1), padding=1, groups=c)
        else:
            y = F.conv2d(x[b:b + 1], w, padding=1)
        out.append(y)
    return torch.cat(out)


@pytest.mark.parametrize("up", [False, True])
def test_modulated_conv_matches_per_sample_definition(up):
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 6, 8, 8), torch.randn(5, 6, 3, 3), torch.randn(3, 6)
    got = modulated_conv2d(x, weight, styles, demodulate=True, up=up, f=blur_kernel())
    assert got.shape == (3, 5, 16 if up else 8, 16 if up else 8)
    torch.testing.assert_close(got, _naive_modconv(x, weight, styles, up), rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_output_std():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 16, 16)
    styles = torch.rand(8, 64) * 3 + 0.1  # any style scale: demodulation undoes it
    out = modulated_conv2d(x, torch.randn(32, 64, 3, 3), styles)
    assert 0.9 < out[:, :, 1:-1, 1:-1].std() < 1.1  # borders see zero padding
    raw = modulated_conv2d(x, torch.randn(32, 64, 3, 3), styles, demodulate=False)
    assert raw.std() > 5  # without it the scale grows with the styles and the fan-in


def test_equalised_learning_rate_scaling():
    torch.manual_seed(0)
    lin = EqualLinear(256, 64, lr_mul=0.01)
    assert lin.weight.std().item() == pytest.approx(100, rel=0.05)  # stored N(0, 1) / lr_mul
    x = torch.randn(512, 256)
    torch.testing.assert_close(lin(x), x @ (lin.weight * 0.01 / 16).t() + lin.bias * 0.01)
    assert lin(x).std().item() == pytest.approx(1.0, abs=0.1)  # runtime scale keeps unit variance
    # The same Adam step moves the effective weight lr_mul times as far: the mapping learns 100x slower.
    moved = {}
    for mul in (1.0, 0.01):
        layer = EqualLinear(8, 8, lr_mul=mul)
        before = (layer.weight * layer.weight_gain).detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=0.1)
        layer(torch.randn(4, 8)).square().sum().backward()
        opt.step()
        moved[mul] = ((layer.weight * layer.weight_gain).detach() - before).abs().max().item()
    assert moved[0.01] / moved[1.0] == pytest.approx(0.01, rel=1e-3)
    conv = EqualConv2d(32, 16, 3, activation=False)
    assert conv(torch.randn(4, 32, 8, 8))[:, :, 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.1)


def test_resampling_filters():
    f = blur_kernel()
    assert f.sum().item() == pytest.approx(1.0)
    ones = torch.ones(1, 2, 8, 8)
    assert upsample2d(ones, f, 2).shape == (1, 2, 16, 16)
    torch.testing.assert_close(upsample2d(ones, f, 2)[..., 2:-2, 2:-2], torch.ones(1, 2, 12, 12))  # gain 4 keeps DC
    torch.testing.assert_close(downsample2d(ones, f, 2)[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))
    assert downsample2d(ones, f, 2).shape == (1, 2, 4, 4)


# ---------------------------------------------------------------- noise, w_avg, truncation, mixing

def test_noise_strength_is_learned_and_sampling_is_deterministic():
    G, _ = build_models(cfg(), 3)
    layers = [m for m in G.modules() if hasattr(m, "noise_strength")]
    assert layers and sum(k.endswith("noise_const") for k in G.state_dict()) == len(layers)  # saved with the weights
    G(torch.randn(2, LATENT)).square().mean().backward()
    assert all(m.noise_strength.grad is not None and m.noise_strength.grad != 0 for m in layers)
    with torch.no_grad():
        for m in layers:
            m.noise_strength.fill_(1.0)
        z = torch.randn(2, LATENT)
        G.train()
        assert not torch.equal(G(z), G(z))  # fresh noise while training
        G.eval()
        assert torch.equal(G(z), G(z))  # fixed noise buffers in eval: same seed, same image
        a = generate(G, latents([5, 6], LATENT))
        assert torch.equal(a, generate(G, latents([5, 6], LATENT)))


def test_w_avg_tracks_the_mean_w_while_training():
    G, _ = build_models(cfg(style_mixing=0.0), 3)
    z = torch.randn(6, LATENT)
    with torch.no_grad():
        w_mean = G.mapping(z)[:, 0].mean(dim=0)
        assert torch.equal(G.w_avg, torch.zeros(LATENT))
        G.eval()
        G(z)
        assert torch.equal(G.w_avg, torch.zeros(LATENT))  # eval never moves it
        G.train()
        G(z)
    torch.testing.assert_close(G.w_avg, (1 - W_AVG_BETA) * w_mean)


def test_truncation_psi_zero_gives_the_w_avg_image_for_any_seed():
    G, _ = build_models(cfg(), 3)
    G.eval()
    G.w_avg.copy_(torch.randn(LATENT))
    z = latents([1, 2, 3], LATENT)
    imgs = generate(G, z, truncation_psi=0.0)
    with torch.no_grad():
        want = G.synthesis(G.w_avg[None, None].repeat(1, G.num_ws, 1))
    for img in imgs:
        torch.testing.assert_close(img, want[0])
    assert not torch.allclose(generate(G, z, truncation_psi=0.5)[0], generate(G, z, truncation_psi=0.5)[1])
    assert truncation_space(G) == "w"
    dcgan, _ = build_models(cfg(arch="dcgan"), 3)
    assert truncation_space(dcgan) == "z"
    with pytest.raises(ValueError, match="w-space"):
        generate(dcgan, z, truncation_psi=0.5)


def test_training_style_mixing_takes_layers_from_b_beyond_a_crossover():
    G, _ = build_models(cfg(style_mixing=1.0), 3)
    z = torch.randn(32, LATENT)
    with torch.no_grad():
        ws = G.mapping(z)
        torch.manual_seed(7)
        mixed = G.mix(ws, z, None)
        torch.manual_seed(7)
        ws_b = G.mapping(torch.randn_like(z))
    cuts = set()
    for i in range(len(z)):
        from_a = [torch.equal(mixed[i, j], ws[i, j]) for j in range(G.num_ws)]
        from_b = [torch.equal(mixed[i, j], ws_b[i, j]) for j in range(G.num_ws)]
        cut = from_a.index(False)
        assert 1 <= cut < G.num_ws and all(from_a[:cut]) and all(from_b[cut:])
        cuts.add(cut)
    assert len(cuts) > 1  # the crossover is drawn per sample
    G.style_mixing = 0.0  # off: the training forward is plain synthesis(mapping(z))
    with torch.no_grad():
        assert torch.equal(G.generate(z[:2], None), G.synthesis(G.mapping(z[:2])))


def test_mix_styles_and_layer_groups():
    G, _ = build_models(cfg(resolution=32), 3)
    G.eval()
    assert layer_groups(G) == {"coarse": [0, 1, 2], "middle": [3, 4], "fine": [5, 6, 7]}
    G16, _ = build_models(cfg(resolution=16), 3)
    assert layer_groups(G16) == {"coarse": [0], "middle": [1, 2], "fine": [3, 4, 5]}
    G64, _ = build_models(cfg(resolution=64), 3)
    assert layer_groups(G64) == {"coarse": [0, 1, 2], "middle": [3, 4, 5, 6], "fine": [7, 8, 9]}
    assert parse_layers("0-2,fine", G) == [0, 1, 2, 5, 6, 7]
    for bad in ("9", "x", "3-1"):
        with pytest.raises(ConfigError, match="mix-layers"):
            parse_layers(bad, G)
    za, zb = latents([1], LATENT), latents([2], LATENT)
    out = mix_styles(G, za, zb, [5, 6, 7])
    with torch.no_grad():
        ws = G.mapping(za)
        ws[:, 5:] = G.mapping(zb)[:, 5:]
        torch.testing.assert_close(out, G.synthesis(ws))
    assert torch.equal(mix_styles(G, za, zb, []), generate(G, za))


# ---------------------------------------------------------------- config, lazy R1, path length

def test_config_fields_and_presets():
    assert auto_r1_gamma(32, 32) == pytest.approx(0.0064)
    c = preset("stylegan2")
    assert (c.loss, c.beta1, c.beta2, c.lr_g, c.r1_every, c.pl_weight, c.style_mixing) == ("bce", 0, 0.99, 0.0025, 16, 2, 0.9)
    assert c.r1_gamma() == pytest.approx(0.0002 * 32 ** 2 / 32) and c.r1_gamma(world_size=4) == pytest.approx(0.0016)
    small = preset("stylegan2-small")
    assert small.resolution == 32 and small.mapping_layers == 2 and small.pl_weight == 0
    for field, value in (("mapping_layers", 0), ("style_mixing", 1.5), ("r1_every", 0), ("pl_every", 0), ("pl_weight", -1)):
        with pytest.raises(ConfigError) as e:
            cfg(**{field: value}).validate()
        assert e.value.field == field
    unused = unused_fields({"arch": "dcgan", "r1_auto": True})
    assert {"mapping_layers", "style_mixing", "pl_weight", "pl_every", "r1_weight"} <= unused.keys()
    assert "r1_every" not in unused
    sg = unused_fields({"arch": "stylegan2", "pl_weight": 2.0})
    assert {"d_norm", "spectral_norm", "minibatch_std"} <= sg.keys() and "pl_weight" not in sg and "pl_every" not in sg


def _capture_totals(t):
    """Record the total losses handed to the scalers (GradScaler is off on the CPU: scale() is the identity)."""
    seen = {"d": [], "g": []}
    for k, scaler in (("d", t.scaler_d), ("g", t.scaler_g)):
        scaler.scale = lambda x, _k=k: (seen[_k].append(x.detach()), x)[1]
    return seen


def test_lazy_r1_every_k_steps_scaled_by_k():
    t = trainer(r1_weight=0.5, r1_every=3, n_critic=1)
    assert t.regs.r1_scale == pytest.approx(0.5 * 0.5 * 3)
    seen = _capture_totals(t)
    r1_values = []
    for step in range(6):
        out = t.step()
        extra = seen["d"][-1] - out["loss/d"]
        if step % 3 == 0:
            torch.testing.assert_close(extra, t.regs.r1_scale * out["r1"])
            r1_values.append(out["r1"])
        else:
            assert extra.abs() < 1e-6  # no penalty between the lazy steps
            assert torch.equal(out["r1"], r1_values[-1])  # the last value keeps being reported
    auto = trainer(r1_auto=True, r1_every=2)
    assert auto.regs.r1_gamma == pytest.approx(0.0002 * 16 ** 2 / 4) and auto.regs.r1_scale > 0


def test_path_length_regularisation_and_pl_mean_checkpoint():
    t = trainer(pl_weight=2.0, pl_every=2)
    seen = _capture_totals(t)
    means = []
    for step in range(4):
        out = t.step()
        extra = seen["g"][-1] - out["loss/g"]
        if step % 2 == 0:
            torch.testing.assert_close(extra, 2.0 * 2 * out["loss/pl"])
        else:
            assert extra.abs() < 1e-6
        means.append(float(out["pl/mean"]))
    assert means[0] > 0 and means[0] == means[1] and means[2] != means[1]
    s = t.state_dict()
    assert float(s["regularizers"]["pl_mean"]) == means[-1]
    t2 = trainer(pl_weight=2.0, pl_every=2)
    t2.load_state_dict(s)
    assert float(t2.regs.pl_mean) == means[-1]
    assert trainer(arch="dcgan", pl_weight=2.0).regs.pl_weight == 0  # other families ignore it


def test_resume_equals_uninterrupted_run(tmp_path):
    """N + M steps after a resume = N + M straight, with lazy R1 / path length off the checkpoint's step."""
    c = cfg(data="shapes", steps=7, checkpoint_every=4, log_every=2, sample_every=100, ema=0.9, r1_auto=True,
            r1_every=3, pl_weight=2.0, pl_every=3, style_mixing=0.9)
    straight = create_run(c, tmp_path / "a")
    assert run_training(straight) == "finished"
    part = create_run(c, tmp_path / "b")
    assert run_training(part, should_stop=lambda: part.step_count >= 4) == "stopped"
    resumed = resume_run(part.store.path)
    assert resumed.step_count == 4 and run_training(resumed) == "finished"
    for net in ("G", "D"):
        a, b = getattr(straight, net).state_dict(), getattr(resumed, net).state_dict()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    ea, eb = straight.ema.model.state_dict(), resumed.ema.model.state_dict()
    for k in ea:
        torch.testing.assert_close(ea[k], eb[k], rtol=1e-5, atol=1e-6, msg=k)
    assert float(straight.regs.pl_mean) == pytest.approx(float(resumed.regs.pl_mean), rel=1e-5)


def test_channels_last_fast_path_matches_plain_path():
    """channels_last (the CPU/CUDA fast path) gives the same training, R1 and path length included."""
    losses = {}
    for fast in (True, False):
        images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        t = Trainer(cfg(seed=3, r1_weight=1.0, r1_every=2, pl_weight=2.0, pl_every=2),
                    ImageDataset(images, None, [], 3, 16, "t", "t"), fast_path=fast)
        assert t.channels_last == fast
        losses[fast] = [[float(v) for v in (o["loss/d"], o["loss/g"], o["r1"], o["loss/pl"])]
                        for o in (t.step() for _ in range(3))]
    for a, b in zip(losses[True], losses[False]):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)


def test_conditional():
    G, D = build_models(cfg(conditional=True), 3, num_classes=4)
    G.eval()
    z, y = torch.randn(3, LATENT), torch.tensor([0, 3, 1])
    with torch.no_grad():
        assert not torch.allclose(G(z, y), G(z, torch.tensor([2, 2, 2])))
        x = torch.randn(3, 3, 16, 16)
        assert not torch.allclose(D(x, y), D(x, torch.tensor([2, 2, 2])))
        assert D.features(x).shape == (3, D.feature_dim)  # projection: features need no labels
    with pytest.raises(ValueError, match="conditional"):
        G.mapping(z)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    t = Trainer(cfg(conditional=True, pl_weight=1.0, pl_every=1, r1_weight=1.0),
                ImageDataset(images, torch.arange(8) % 2, ["a", "b"], 3, 16, "t", "t"))
    out = t.step()
    assert all(torch.isfinite(out[k]) for k in ("loss/d", "loss/g", "r1", "loss/pl"))


# ---------------------------------------------------------------- export and CLI (one trained run)

@pytest.fixture(scope="module")
def sg_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sg")
    t = create_run(cfg(data="shapes", steps=2, checkpoint_every=2, log_every=1, sample_every=2, ema=0.9), root)
    assert run_training(t) == "finished"
    return t.store.path


def test_bundle_keeps_w_avg_and_onnx_parity(sg_run, tmp_path):
    from core.export import export_generator
    g = load_generator(sg_run)
    assert g.G.w_avg.abs().sum() > 0  # tracked during training, copied into the EMA generator
    res = export_generator(sg_run, "safetensors", tmp_path / "g")
    b = load_generator(res.path)
    assert torch.equal(b.G.w_avg, g.G.w_avg)
    z = latents([3, 4], LATENT)
    assert torch.equal(generate(b.G, z, truncation_psi=0.5), generate(g.G, z, truncation_psi=0.5))
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    onnx = export_generator(sg_run, "onnx", tmp_path / "g.onnx")
    assert onnx.parity is not None and onnx.parity <= 1e-4
    sess = ort.InferenceSession(str(onnx.path), providers=["CPUExecutionProvider"])
    z = latents(list(range(5)), LATENT)  # another batch size than the export's: the batch is dynamic
    assert abs(sess.run(["images"], {"z": z.numpy()})[0] - generate(g.G, z).numpy()).max() <= 1e-4


def test_cli_generate_style_mix(sg_run, tmp_path, capsys):
    out = tmp_path / "mix"
    assert cli_main(["generate", str(sg_run), "--seed", "1", "--style-mix", "2", "--mix-layers", "fine",
                     "--out", str(out)]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == ["mix_000001_000002_w3-4-5.png"]
    g = load_generator(sg_run)
    want = style_mix_seeds(g, [1], 2, "fine")
    assert not torch.equal(want, generate(g.G, latents([1], LATENT)))
    assert cli_main(["generate", str(sg_run), "--seed", "1", "-n", "2", "--truncation", "0", "--out", str(tmp_path / "t")]) == 0
    a, b = sorted((tmp_path / "t").glob("*.png"))
    assert a.read_bytes() == b.read_bytes()  # psi = 0 in w: the w_avg image for every seed
    capsys.readouterr()
    dc = create_run(TrainConfig(data="shapes", resolution=16, g_width=4, d_width=4, latent_dim=8, batch_size=4,
                                steps=1, device="cpu", threads=1, eval_every=0), tmp_path / "dc")
    run_training(dc)
    assert cli_main(["generate", str(dc.store.path), "--style-mix", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "style mixing needs arch=stylegan2" in err[0]
