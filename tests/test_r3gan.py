"""arch=r3gan and R3GAN's schedules: shapes, no normalisation, fix-up init, a scheduled rpgan + R1 + R2 step,
exact resume mid-schedule, ONNX / bundle export parity, the modern preset and the family listing."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from core.config import PRESETS, ConfigError, TrainConfig, preset
from core.models import available_archs, build_models
from core.models import r3gan as R
from core.train.schedule import cosine, values_at

torch.set_num_threads(1)  # the test machine's CPU is shared; tiny nets are fastest single-threaded
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _nets(r=32, width=8, latent=16, classes=0, channels=3):
    torch.manual_seed(0)
    cfg = TrainConfig(arch="r3gan", resolution=r, g_width=width, d_width=width, latent_dim=latent,
                      conditional=bool(classes))
    return build_models(cfg, channels, classes)


def _tiny(**kw) -> TrainConfig:
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=8, log_every=1,
                sample_every=4, checkpoint_every=4, device="cpu", threads=1, eval_every=0)
    return preset("modern", **{**base, **kw})


@pytest.mark.parametrize("r", [32, 64])
def test_shapes_features_and_eval_range(r):
    g, d = _nets(r)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 3, r, r)
    assert d(x).shape == (3,) and d.features(x).shape == (3, d.feature_dim) == (3, 32)
    g.eval()
    with torch.no_grad():  # linear while training (as in the paper), clamped where samples are made
        assert g(torch.randn(3, 16)).abs().max() <= 1
    widths = R.stage_widths(r, 8)
    assert widths[4] == 32 and widths[r] == 8  # resnet-sn's table: 4 x width at 4 x 4, width at full size


def test_no_normalisation_layers_in_either_net():
    for net in _nets(32):
        mods = list(net.modules())
        assert not [m for m in mods if isinstance(m, NORMS)]
        assert not [m for m in mods if parametrize.is_parametrized(m)]  # no spectral norm / weight norm either
        assert not [n for n, _ in net.named_parameters() if "orig" in n]
    convs = [m for m in _nets(32, width=16)[0].modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(c.groups == c.in_channels // R.GROUP_CHANNELS for c in convs)  # grouped 3x3, 16 per group


def test_blocks_start_as_identity_and_variance_does_not_grow_with_depth():
    torch.manual_seed(0)
    x = torch.randn(8, 32, 8, 8)
    for L in (4, 16, 64):
        ratio = {}
        for scaled in (True, False):
            blocks = [R.ResidualBlock(32, L if scaled else 1) for _ in range(L)]
            assert all(torch.equal(b(x), x) for b in blocks)  # zero-init projection: exactly the identity
            for b in blocks:  # as if the projection had learned: the same scale as the branch's other layers
                R.msr_init_(b.project, R.ACT_GAIN * (L if scaled else 1) ** -0.25)
            h = x
            with torch.no_grad():
                for b in blocks:
                    h = b(h)
            ratio[scaled] = float(h.var() / x.var())
        assert ratio[True] < 3, (L, ratio)  # the L^(-1/4) scaling: bounded whatever the depth
        if L >= 16:
            assert ratio[False] > 1e3, (L, ratio)  # without it the variance explodes with depth
    for r in (16, 64):  # whole nets at init: unit-scale images, modest logits
        g, d = _nets(r, width=16)
        with torch.no_grad():
            img = g(torch.randn(16, 16))
            assert 0.2 < float(img.std()) < 3 and float(d(img).abs().max()) < 10


def test_conditional_generator_and_projection():
    g, d = _nets(16, classes=3)
    z = torch.randn(1, 16).expand(3, 16)
    y = torch.tensor([0, 1, 2])
    x = g(z, y)
    assert not torch.allclose(x[0], x[1]) and d(x, y).shape == (3,) and d.embed is not None
    with pytest.raises(ValueError, match="labels"):
        g(z)


def test_cosine_schedule_values():
    assert cosine(2.0, 0.2, 0, 100) == 2.0 and cosine(2.0, 0.2, 100, 100) == pytest.approx(0.2)
    assert cosine(2.0, 0.2, 50, 100) == pytest.approx(1.1) and cosine(2.0, 0.2, 10**9, 100) == pytest.approx(0.2)
    assert cosine(2.0, 0.2, 50, 0) == 2.0  # off
    cfg = _tiny(schedule_images=1000)
    want = {0: (2e-4, 0.9, 0.05), 500: (1.25e-4, 0.945, 0.0275), 1000: (5e-5, 0.99, 0.005), 5000: (5e-5, 0.99, 0.005)}
    for images, (lr, beta2, gamma) in want.items():
        v = values_at(cfg, images)
        assert (v.lr_g, v.lr_d, v.beta2, v.r1, v.r2) == pytest.approx((lr, lr, beta2, gamma, gamma)), images
    v = values_at(TrainConfig(r1_weight=1.0), 10**6)  # the default: off, every value constant
    assert (v.lr_g, v.beta2, v.r1) == (2e-4, 0.999, 1.0)


def test_scheduled_rpgan_r1_r2_step_is_finite_and_follows_the_schedule():
    from core.data import load_dataset
    from core.train import Trainer
    t = Trainer(_tiny(schedule_images=32), load_dataset("shapes", 16))  # 8 images a step: the end after 4 steps
    assert t.loss.name == "rpgan" and t.sched is not None
    seen = []
    for _ in range(5):
        out = t.step()
        assert all(torch.isfinite(v).all() for v in out.values()), out
        assert out["r1"] > 0 and out["r2"] > 0
        seen.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["betas"][1], float(out["sched/gamma"])))
    assert seen[0] == pytest.approx((2e-4, 0.9, 0.05))  # step 0: the start values exactly
    assert seen[2] == pytest.approx((1.25e-4, 0.945, 0.0275))  # 16 of 32 images: halfway along the cosine
    assert seen[4] == pytest.approx((5e-5, 0.99, 0.005))  # past the end: held
    assert t.regs.r1_gamma == t.terms.r2_weight == pytest.approx(0.005)
    assert Trainer(_tiny(schedule_images=0), load_dataset("shapes", 16)).sched is None  # off: nothing rewritten


def test_resume_mid_schedule_equals_an_uninterrupted_run_bitwise(tmp_path):
    from core.runs import load_run
    from core.train import create_run, resume_run, run_training
    cfg = _tiny(schedule_images=48)  # the stop at step 4 (32 images) is two thirds along the cosine
    straight = create_run(cfg, tmp_path / "a")
    assert run_training(straight) == "finished"
    part = create_run(cfg, tmp_path / "b")
    assert run_training(part, should_stop=lambda: part.step_count >= 4) == "stopped"
    resumed = resume_run(part.store.path)
    assert run_training(resumed) == "finished"
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.ema.model, resumed.ema.model)):
        sa, sb = a.state_dict(), b.state_dict()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    for oa, ob in ((straight.opt_g, resumed.opt_g), (straight.opt_d, resumed.opt_d)):
        assert oa.param_groups[0]["lr"] == ob.param_groups[0]["lr"] and oa.param_groups[0]["betas"] == ob.param_groups[0]["betas"]
    rows = load_run(straight.store.path).metrics()
    assert [round(r["sched/beta2"], 6) for r in rows][:2] == [0.9, round(0.9 + 0.09 * (1 - math.cos(math.pi / 6)) / 2, 6)]
    assert rows[-1]["sched/gamma"] == pytest.approx(0.005) and rows[-1]["lr/g"] == pytest.approx(5e-5)
    from studio.charts import chart_groups
    titles = {t: c for t, c, _ in chart_groups(rows[-1], "rpgan")}
    assert titles["Schedule: R1 / R2 weights"] == ["sched/gamma", "sched/r2"] and titles["Schedule: Adam β2"] == ["sched/beta2"]


def test_bf16_autocast_steps_are_finite_with_fp32_penalties():
    """The autocast path CUDA takes, as bf16 on the CPU: R1 and R2 come from their own fp32 passes."""
    from core.data import load_dataset
    from core.train import Trainer
    t = Trainer(_tiny(precision="bf16", schedule_images=16), load_dataset("shapes", 16))
    assert not t.r1_reuses_d_real
    for _ in range(3):
        out = t.step()
        assert all(math.isfinite(float(v)) for v in out.values()), out
    assert out["r1"] > 0 and out["r2"] > 0 and all(p.dtype == torch.float32 for p in t.G.parameters())


def test_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    g, _ = _nets(32)
    for m in g.modules():  # trained-looking weights: the zero-init projections would hide the residual path
        if isinstance(m, R.ResidualBlock):
            R.msr_init_(m.project, 0.5)
    g.eval()
    path = tmp_path / "g.onnx"
    torch.onnx.export(g, (torch.randn(2, 16),), str(path), input_names=["z"], output_names=["images"],
                      dynamic_axes={"z": {0: "n"}}, dynamo=False)
    zz = torch.randn(3, 16)
    got = ort.InferenceSession(str(path)).run(None, {"z": zz.numpy()})[0]
    with torch.no_grad():
        assert abs(got - g(zz).numpy()).max() <= 1e-4


def test_a_trained_run_exports_to_onnx_and_a_standalone_bundle(tmp_path):
    pytest.importorskip("onnxruntime")
    from core import export as E
    from core.train import create_run, run_training
    t = create_run(_tiny(steps=2, checkpoint_every=2, sample_every=2), tmp_path / "runs")
    assert run_training(t) == "finished"
    for fmt in ("onnx", "safetensors"):  # each checks its program against PyTorch and refuses a mismatch
        res = E.export_generator(t.store.path, fmt, tmp_path / "export" / fmt)
        assert res.path.exists(), fmt


def test_modern_preset_is_r3gans_recipe_and_the_family_is_listed():
    c = preset("modern")
    assert (c.arch, c.loss, c.beta1, c.beta2, c.beta2_end) == ("r3gan", "rpgan", 0.0, 0.9, 0.99)
    assert c.r1_weight == c.r2_weight == 0.05 and c.gamma_end_factor == 0.1 and c.lr_end_factor == 0.25
    assert c.schedule_images == c.steps * c.batch_size and c.ema > 0
    assert available_archs()[-1] == "r3gan" and "r3gan" in PRESETS["modern"].values()
    for kw, field in ((dict(lr_end_factor=0.0), "lr_end_factor"), (dict(beta2_end=1.0), "beta2_end"),
                      (dict(schedule_images=-1), "schedule_images"), (dict(gamma_end_factor=-1.0), "gamma_end_factor")):
        with pytest.raises(ConfigError) as e:
            preset("modern", **kw)
        assert e.value.field == field
    from core.field_use import unused_fields
    assert {"d_norm", "spectral_norm", "minibatch_std"} <= set(unused_fields({"arch": "r3gan"}))
    assert "beta2_end" in unused_fields({}) and "beta2_end" not in unused_fields(PRESETS["modern"])


@pytest.mark.ddp
@pytest.mark.slow
def test_two_ranks_stay_identical_with_the_schedule(tmp_path):
    from test_translate_distributed import assert_complete_run, assert_same_weights, run_two_ranks
    runs = tmp_path / "runs"
    sets = ["g_width=8", "d_width=8", "latent_dim=16", "threads=1", "log_every=2", "sample_every=3",
            "checkpoint_every=4", "schedule_images=16"]
    w0, w1 = run_two_ranks(tmp_path, ["train", "--preset", "modern", "--data", "shapes", "--resolution", "16",
                                      "--batch-size", "2", "--steps", "6", "--runs-dir", str(runs), "--device", "cpu",
                                      "--quiet", *[x for s in sets for x in ("--set", s)]])
    assert_same_weights(w0, w1, ("G", "D"))
    assert_complete_run(runs, 6)
