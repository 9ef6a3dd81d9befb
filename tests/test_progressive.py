"""Progressive growing (ProGAN): the stage schedule, fade-in maths of G, D and the reals, two-stage training,
exact resume mid-fade, config errors, and export of the grown generator."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.config import ConfigError, TrainConfig
from core.models import build_models
from core.models.progressive import blend_reals, set_stage, stage_at

ARCHS = ("dcgan", "resnet-sn")


def _cfg(**kw):
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=10,
                device="cpu", threads=1, ema=0.9, progressive=True, fade_images=16, log_every=1, sample_every=5,
                checkpoint_every=5, eval_every=0)
    return TrainConfig(**{**base, **kw}).validate()


def test_schedule_is_a_pure_function_of_images():
    # 4 px stable 16 images, fade to 8 over 16, 8 stable 16, fade to 16 over 16, then 16 px for good.
    want = {0: (4, 1.0), 15: (4, 1.0), 16: (8, 0.0), 20: (8, 0.25), 32: (8, 1.0), 47: (8, 1.0), 48: (16, 0.0),
            56: (16, 0.5), 64: (16, 1.0), 10_000: (16, 1.0)}
    for images, stage in want.items():
        assert stage_at(images, 4, 16, 16, 16) == stage, images
    assert stage_at(0, 8, 32, 10, 5) == (8, 1.0) and stage_at(7, 8, 32, 10, 5) == (16, 0.2)


@pytest.mark.parametrize("arch", ARCHS)
def test_generator_fade_in_maths(arch):
    torch.manual_seed(0)
    g, _ = build_models(_cfg(arch=arch), 3)
    g.eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        set_stage(8, 1.0, g)
        prev = g(z)  # the 8 px stage, nearest-upsampled to 16 px
        assert torch.equal(prev, F.interpolate(F.avg_pool2d(prev, 2), scale_factor=2, mode="nearest"))
        set_stage(16, 0.0, g)
        assert torch.equal(g(z), prev)  # alpha 0: exactly the previous stage
        set_stage(16, 1.0, g)
        new = g(z)
        h = g.stem(z, None)
        for b in g.blocks:
            h = b(h, None)
        assert torch.equal(new, g.to_rgb["16"](h))  # alpha 1: exactly the new block's image
        for a in (0.25, 0.7):
            set_stage(16, a, g)
            torch.testing.assert_close(g(z), (1 - a) * prev + a * new, rtol=0, atol=1e-6)  # linear in between


@pytest.mark.parametrize("arch", ARCHS)
def test_discriminator_fade_in_maths(arch):
    torch.manual_seed(0)
    _, d = build_models(_cfg(arch=arch), 3)
    d.eval()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    seen = []
    hook = d.blocks[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))  # the blended 8 px features
    with torch.no_grad():
        set_stage(8, 1.0, d)
        prev = d(x)
        set_stage(16, 0.0, d)
        assert torch.equal(d(x), prev)  # alpha 0: the 8 px D on the avg-pooled image
        low = seen[-1]
        set_stage(16, 1.0, d)
        new_out = d(x)
        high = seen[-1]
        assert torch.equal(high, d.blocks[1](d.from_rgb["16"](x)))  # alpha 1: through the new block only
        assert not torch.equal(new_out, prev)
        set_stage(16, 0.3, d)
        d(x)
        torch.testing.assert_close(seen[-1], 0.7 * low + 0.3 * high, rtol=0, atol=1e-6)
    hook.remove()


def test_reals_are_blended_like_progan():
    x = torch.rand(2, 3, 16, 16)
    x8 = F.avg_pool2d(x, 2)
    up = lambda t, k: F.interpolate(t, scale_factor=k, mode="nearest")  # noqa: E731
    assert torch.equal(blend_reals(x, 16, 1.0, 4), x)
    assert torch.equal(blend_reals(x, 8, 1.0, 4), up(x8, 2))
    torch.testing.assert_close(blend_reals(x, 8, 0.0, 4), up(F.avg_pool2d(x8, 2), 4))
    mid = (0.6 * up(F.avg_pool2d(x8, 2), 2) + 0.4 * x8)
    torch.testing.assert_close(blend_reals(x, 8, 0.4, 4), up(mid, 2))
    assert torch.equal(blend_reals(x, 4, 0.0, 4), up(F.avg_pool2d(x, 4), 4))  # the first stage never fades


@pytest.mark.parametrize("arch", ARCHS)
def test_trains_through_stages_and_resumes_exactly_mid_fade(arch, tmp_path):
    from core.runs import load_run
    from core.train import create_run, resume_run, run_training
    cfg = _cfg(arch=arch)  # 8 images a step: 4 px, fade to 8 (steps 2-3), 8 px, fade to 16 (steps 6-7), 16 px
    straight = create_run(cfg, tmp_path / "a")
    assert run_training(straight) == "finished"
    rows = load_run(straight.store.path).metrics()
    stages = [(r["prog/stage"], r["prog/alpha"]) for r in rows]
    assert stages == [(4, 1.0), (4, 1.0), (8, 0.0), (8, 0.5), (8, 1.0), (8, 1.0), (16, 0.0), (16, 0.5),
                      (16, 1.0), (16, 1.0)]
    part = create_run(cfg, tmp_path / "b")
    assert run_training(part, should_stop=lambda: part.step_count >= 7) == "stopped"  # stops mid-fade (16 px, 0.5)
    resumed = resume_run(part.store.path)
    assert (resumed.G.res, resumed.G.alpha) == (16, 0.5)  # the checkpoint's stage, before any step
    assert run_training(resumed) == "finished"
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.ema.model, resumed.ema.model)):
        sa, sb = a.state_dict(), b.state_dict()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert straight.sample_fixed().shape == (64, 3, 16, 16)
    from studio.charts import chart_groups
    titles = {t: c for t, c, _ in chart_groups(rows[-1])}
    assert titles["Progressive growing: size"] == ["prog/stage"] and titles["Progressive growing: fade-in"] == ["prog/alpha"]


def test_unused_stages_get_no_gradients_until_their_stage():
    from core.data import load_dataset
    from core.train.trainer import Trainer
    t = Trainer(_cfg(), load_dataset("shapes", 16))
    w16 = t.G.to_rgb["16"][0].weight.clone()
    for _ in range(2):  # 4 px stable: the 16 px output layer is not in the graph
        t.step()
    assert torch.equal(t.G.to_rgb["16"][0].weight, w16) and t.G.to_rgb["16"][0].weight.grad is None
    assert t.opt_g.state.get(t.G.to_rgb["16"][0].weight, {}) == {}  # Adam never touched it: exact when it starts


def test_config_errors_name_the_field():
    for kw, field in ((dict(arch="stylegan2"), "progressive"), (dict(arch="mlp"), "progressive"),
                      (dict(task="pix2pix", loss="bce"), "progressive"), (dict(progressive_start=2), "progressive_start"),
                      (dict(progressive_start=16, resolution=16), "progressive_start"), (dict(fade_images=0), "fade_images"),
                      (dict(compile=True), "compile"), (dict(attention=8), "attention")):
        with pytest.raises(ConfigError) as e:
            _cfg(**kw)
        assert e.value.field == field, kw
    assert not TrainConfig().progressive  # off by default
    from core.field_use import unused_fields  # the Train form greys the growth fields while it is off
    assert "fade_images" in unused_fields({}) and "fade_images" not in unused_fields({"progressive": True})


def test_export_of_a_grown_run_is_the_full_resolution_net(tmp_path):
    from core import export as E
    from core.generator import generate, latents, load_generator
    from core.train import create_run, run_training
    t = create_run(_cfg(steps=9, log_every=3), tmp_path)
    assert run_training(t) == "finished"
    from core.runs import load_run  # a log row holds the stage of its last step, not a mean over its window
    rows = [(r["prog/stage"], r["prog/alpha"]) for r in load_run(t.store.path).metrics()]
    assert rows == [(4, 1.0), (8, 0.0), (8, 1.0), (16, 1.0)]
    g = load_generator(t.store.path)
    assert (g.G.res, g.G.alpha) == (16, 1.0)
    z = latents([1, 2, 3], 16)
    out = generate(g.G, z, None)
    assert out.shape == (3, 3, 16, 16) and not torch.equal(out, F.interpolate(F.avg_pool2d(out, 2), scale_factor=2))
    res = E.export_generator(t.store.path, "torch-export", tmp_path / "g.pt2")
    assert res.parity is not None and res.parity < 1e-4


@pytest.mark.ddp
@pytest.mark.slow
def test_two_rank_ddp_run_grows(tmp_path):
    """DDP: later stages' blocks are out of the graph until their stage (find_unused_parameters), 2 CPU ranks."""
    import json
    import subprocess
    from pathlib import Path

    from test_distributed import ENV, ROOT, torchrun
    args = ["-m", "core", "train", "--data", "shapes", "--resolution", "16", "--batch-size", "4", "--steps", "6",
            "--runs-dir", str(tmp_path / "runs"), "--quiet", "--device", "cpu"]
    for kv in ("g_width=8", "d_width=8", "latent_dim=16", "threads=1", "log_every=1", "progressive=true",
               "fade_images=8", "eval_every=0"):
        args += ["--set", kv]
    for _attempt in range(2):  # a free port can be taken before torchrun binds it
        r = subprocess.run(torchrun(*args), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if r.returncode == 0:
            break
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = Path(tmp_path / "runs").iterdir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # global batch 8, 8 images a phase: one step each of 4 px, fade to 8, 8 px, fade to 16, then 16 px
    assert [(r["prog/stage"], r["prog/alpha"]) for r in rows] == [(4, 1), (8, 0), (8, 1), (16, 0), (16, 1), (16, 1)]
