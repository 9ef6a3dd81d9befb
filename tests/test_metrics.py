"""Quality metrics: SWD, FID/KID/IS/PR plumbing (tiny random feature net), the training monitor, the CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.metrics import (
    FeatureNetUnavailable,
    TinyRandomFeatures,
    evaluate,
    fid,
    find_inception_weights,
    inception_score,
    kid,
    precision_recall,
    swd,
)
from core.metrics.cache import clear_memory
from core.train import run_training

ROOT = Path(__file__).resolve().parent.parent


def _images(n: int, res: int = 32, seed: int = 0) -> torch.Tensor:
    """Structured test images (smooth blobs + edges), float in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, res // 8, res // 8, generator=g) * 2 - 1
    x = F.interpolate(low, size=(res, res), mode="bilinear", align_corners=False)
    x = x + 0.3 * torch.sign(torch.rand(n, 1, res, res, generator=g) - 0.9)
    return x.clamp(-1, 1)


@pytest.fixture(autouse=True)
def _fresh_cache_one_thread():
    # One intra-op thread: tiny tensors gain nothing from more, and the CPU is shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clear_memory()
    yield
    clear_memory()
    torch.set_num_threads(threads)


@pytest.fixture
def no_inception(tmp_path, monkeypatch):
    """Make sure no Inception weights are found (and so none could ever be downloaded)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("GAN_STUDIO_INCEPTION_WEIGHTS", raising=False)
    import torch.hub
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-home" / "hub"))


# ---------------------------------------------------------------- SWD
def test_swd_identical_is_zero_and_grows_with_shift_and_blur():
    a = _images(128)
    b = _images(128, seed=1)
    same = swd(a, a, seed=0)
    assert same["avg"] == pytest.approx(0.0, abs=1e-6)
    assert set(same) == {"32px", "16px", "avg"}
    base = swd(a, b)["avg"]  # same distribution, different samples: the estimator's noise floor
    shifted = swd(a, (b + 0.4).clamp(-1, 1))["avg"]
    blurred = swd(a, F.avg_pool2d(b, 3, 1, 1, count_include_pad=False))["avg"]
    assert shifted > 2 * base
    assert blurred > 2 * base
    more_blur = swd(a, F.avg_pool2d(b, 5, 1, 2, count_include_pad=False))["avg"]
    assert more_blur > blurred


def test_swd_deterministic_with_seed_and_uint8_equals_float():
    a, b = _images(64), _images(64, seed=3)
    assert swd(a, b, seed=5) == swd(a, b, seed=5)
    assert swd(a, b, seed=5) != swd(a, b, seed=6)
    to_u8 = lambda x: ((x + 1) * 127.5).round().to(torch.uint8)
    assert swd(to_u8(a), to_u8(b), seed=5)["avg"] == pytest.approx(swd(to_u8(a).float() / 127.5 - 1, to_u8(b).float() / 127.5 - 1, seed=5)["avg"], rel=1e-4)


# ---------------------------------------------------------------- feature-net metrics (plumbing only)
def test_fid_kid_is_pr_plumbing_with_tiny_random_net():
    net = TinyRandomFeatures(num_features=16)  # random weights: checks the plumbing, not image quality
    a, b = _images(200), _images(200, seed=1)
    fa, fb = net(a).double(), net(b).double()
    fshift = net((b + 0.5).clamp(-1, 1)).double()
    assert fid(fa, fa) == pytest.approx(0.0, abs=1e-3)
    assert fid(fa, fshift) > fid(fa, fb) + 1e-3
    m, s = kid(fa, fshift, subsets=20, subset_size=50)
    assert s > 0 and m > kid(fa, fb, subsets=20, subset_size=50)[0]
    assert kid(fa, fb, seed=1) == kid(fa, fb, seed=1)  # subsets drawn from our seed, not the global RNG
    p, r = precision_recall(fa, fa)
    assert (p, r) == (1.0, 1.0)
    p2, r2 = precision_recall(fa, net(torch.full_like(b, 1.0)).double())  # all generated images identical
    assert p2 < 0.5 and r2 < 0.5
    # IS of the random net's logits, one split: exp(mean KL(p(y|x) || p(y))) from its definition.
    logits = net.logits(a).double()
    p_yx = logits.softmax(dim=1)
    kl = (p_yx * (p_yx.log() - p_yx.mean(dim=0, keepdim=True).log())).sum(dim=1)
    assert _inception_score_one_split(logits) == pytest.approx(math.exp(kl.mean().item()), rel=1e-9)


def _inception_score_one_split(logits: torch.Tensor) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the std over a single split is undefined
        return inception_score(logits, splits=1)[0]


def test_inception_score_of_logits_with_a_known_score():
    """Uniform logits: every p(y|x) is the marginal, so IS = 1 exactly (and so is every split).
    k classes equally often, each image sure of its own (logit L on it, 0 elsewhere): the marginal
    is uniform, so IS = exp(log k - H(p(y|x))), H = -(a log a + (k-1) b log b) with
    a = e^L / (e^L + k - 1) and b = 1 / (e^L + k - 1); it tends to k as L grows."""
    n, k = 200, 10
    mean, std = inception_score(torch.zeros(n, k, dtype=torch.float64), splits=5)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    for L in (2.0, 8.0, 30.0):
        logits = torch.zeros(n, k, dtype=torch.float64)
        logits[torch.arange(n), torch.arange(n) % k] = L
        a, b = math.exp(L) / (math.exp(L) + k - 1), 1 / (math.exp(L) + k - 1)
        expected = math.exp(math.log(k) + a * math.log(a) + (k - 1) * b * math.log(b))
        assert _inception_score_one_split(logits) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(k, rel=1e-9)  # L = 30: one-hot for all purposes


def test_evaluate_with_custom_feature_net(no_inception):
    from core.config import TrainConfig
    from core.models import build_models
    cfg = TrainConfig(resolution=16, g_width=8, d_width=8, latent_dim=16)
    G, _ = build_models(cfg, 3, 0)
    reals = ((_images(64, res=16) + 1) * 127.5).round().to(torch.uint8)
    out = evaluate(G, reals, n=48, metrics="swd,fid,kid,is,pr", feature=TinyRandomFeatures(), device="cpu")
    got = {r["metric"]: r for r in out["results"]}
    assert set(got) == {"swd", "fid", "kid", "is", "precision", "recall"}
    assert got["swd"]["feature_net"] == "laplacian-pyramid-7x7"
    assert got["fid"]["feature_net"].startswith("tiny-random-conv")
    assert got["kid"]["std"] > 0 and out["unavailable"] == {}
    # Without weights, Inception metrics are reported unavailable, never replaced under their name.
    out2 = evaluate(G, reals, n=32, metrics="swd,fid", device="cpu")
    assert [r["metric"] for r in out2["results"]] == ["swd"]
    assert "Inception-v3 weights" in out2["unavailable"]["fid"]
    assert "GAN_STUDIO_INCEPTION_WEIGHTS" in out2["unavailable"]["fid"]


def test_inception_weights_lookup(no_inception, tmp_path, monkeypatch):
    from core.metrics import inception_weights_available
    assert not inception_weights_available()
    with pytest.raises(FeatureNetUnavailable, match="never downloaded"):
        find_inception_weights()
    with pytest.raises(FeatureNetUnavailable, match="the path you gave"):
        find_inception_weights(tmp_path / "missing.pth")
    f = tmp_path / "w.pth"
    f.write_bytes(b"x")
    monkeypatch.setenv("GAN_STUDIO_INCEPTION_WEIGHTS", str(f))
    assert find_inception_weights() == f and inception_weights_available()
    from core.metrics import InceptionFeatures
    with pytest.raises(FeatureNetUnavailable, match="not a usable Inception weights file"):
        InceptionFeatures()  # a broken file is refused with a clear message, not a crash


def test_inception_path_with_a_random_init_weights_file(tmp_path, no_inception):
    """The Inception route end to end, using a RANDOMLY INITIALISED weights file of the right shape
    (no real weights are downloaded or needed): checks loading, feature shapes and labelling only."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from core.config import TrainConfig
    from core.models import build_models
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        random_net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "random-inception.pth"
    torch.save(random_net.state_dict(), weights)
    del random_net
    G, _ = build_models(TrainConfig(resolution=16, g_width=8, d_width=8, latent_dim=16), 1, 0)
    reals = ((_images(8, res=16)[:, :1] + 1) * 127.5).round().to(torch.uint8)  # greyscale -> 3 channels inside
    out = evaluate(G, reals, n=4, metrics="fid,kid,is,pr", inception_weights=weights, batch_size=4, device="cpu")
    got = {r["metric"]: r for r in out["results"]}
    assert set(got) == {"fid", "kid", "is", "precision", "recall"} and out["unavailable"] == {}
    assert {r["feature_net"] for r in out["results"]} == {"inception-v3-fid"}


# ---------------------------------------------------------------- training monitor
def _monitor_trainer(tmp_path, **over):
    from core.config import TrainConfig
    from core.data import load_dataset
    from core.runs import RunStore
    from core.train import Trainer
    cfg = TrainConfig(**{**dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                                steps=20, device="cpu", threads=1, ema=0.9, log_every=2), **over})
    ds = load_dataset(cfg.data, cfg.resolution)
    store = RunStore.create(tmp_path / "runs", "mon", cfg.to_dict(), {})
    return Trainer(cfg, ds, store)


def test_monitor_adds_keys_on_eval_steps_only_and_keeps_best(tmp_path, monkeypatch):
    import core.train.checkpoint as ckpt
    from core.metrics import quality_hook as monitor
    t = _monitor_trainer(tmp_path)
    mon = monitor.QualityMonitor(t, every=4)
    mon.n = 32
    # A scripted score sequence (the real SWD is exercised below): this test is about bookkeeping.
    seq = iter([5.0, 3.0, 4.0, 2.0])
    monkeypatch.setattr(monitor.swd_mod, "swd", lambda ref, fake, seed=0: {"16px": (v := next(seq)), "avg": v})
    saved = []
    real_save = ckpt.save_checkpoint
    import core.train.loop as loop_mod
    monkeypatch.setattr(loop_mod, "save_checkpoint", lambda path, state: saved.append((t.step_count, Path(path).name))
                        or real_save(path, state))
    from core.train.loop import LoopContext
    ctx = LoopContext(t, [mon], None, None, None)  # the hook asks, the loop's save_best_if_asked writes best.pt
    seen = []
    for step in range(1, 18):  # log steps that are not multiples of eval_every still trigger once per period
        t.step_count = step
        row = {"step": step}
        evs = mon(t, row) or []
        evs += ctx.save_best_if_asked()
        seen.append((step, "metric/swd" in row, [e["best"] for e in evs if e["type"] == "metric"]))
    assert [s for s, has, _ in seen if has] == [4, 8, 12, 16]
    assert [b for _, has, b in seen if has] == [[True], [True], [False], [True]]
    assert saved == [(4, "best.pt"), (8, "best.pt"), (16, "best.pt")]  # only on improvement
    st = t.extra_state["metrics"]
    assert st["best"] == 2.0 and st["best_step"] == 16 and st["metric"] == "swd" and st["last_step"] == 16
    assert ckpt.load_checkpoint(t.store.checkpoints_dir / "best.pt")["extra"]["metrics"]["best_step"] == 16
    # Resume: a new monitor reads the checkpointed state and neither re-evaluates nor loses the best.
    mon2 = monitor.QualityMonitor(t, every=4)
    t.step_count, row = 17, {}
    assert mon2(t, row) is None and "metric/swd" not in row
    # The run's last log step is scored even between multiples of eval_every...
    seq = iter([1.0])
    t.step_count, t.finishing, row = 18, True, {}
    assert [e["best"] for e in mon2(t, row)] == [True] and row["metric/swd"] == 1.0
    assert ctx.save_best_if_asked() == [] and saved[-1] == (18, "best.pt")
    # ...but not twice at the same step, and not in a run shorter than one evaluation period.
    assert mon2(t, {}) is None
    t3 = _monitor_trainer(tmp_path / "short")
    t3.step_count, t3.finishing, row = 3, True, {}
    assert monitor.QualityMonitor(t3, every=4)(t3, row) is None and "metric/swd" not in row


def _eval_settings(monkeypatch, every: int, samples: int) -> dict:
    """Config overrides for a periodic evaluation every ``every`` steps on ``samples`` images."""
    return {"eval_every": every, "eval_samples": samples}


def test_monitor_in_a_real_run_does_not_change_training(tmp_path, monkeypatch):
    """Real SWD through the hook, the run's end (step 9, between evaluations) scored too; the
    fixed-seed run's losses are identical with and without it."""
    from core.fsutil import read_jsonl
    t = _monitor_trainer(tmp_path, steps=9, **_eval_settings(monkeypatch, 4, 32))
    assert run_training(t) == "finished"
    rows = read_jsonl(t.store.path / "metrics.jsonl")[0]
    with_eval = [r for r in rows if "metric/swd" in r]
    assert [r["step"] for r in with_eval] == [4, 8, 9]
    assert all(r["quality/score"] == r["metric/swd"] and r["perf/eval_s"] > 0 for r in with_eval)
    assert (t.store.checkpoints_dir / "best.pt").exists()
    events = [e for e in read_jsonl(t.store.path / "events.jsonl")[0] if e["type"] == "metric"]
    assert [e["step"] for e in events] == [4, 8, 9] and events[0]["best"] is True
    t2 = _monitor_trainer(tmp_path, steps=9, **_eval_settings(monkeypatch, 0, 32))
    assert run_training(t2) == "finished"
    rows2 = read_jsonl(t2.store.path / "metrics.jsonl")[0]
    assert not any("metric/swd" in r for r in rows2)
    assert [r["loss/d"] for r in rows] == [r["loss/d"] for r in rows2]


# ---------------------------------------------------------------- CLI
def test_cli_evaluate_on_a_tiny_run(tmp_path, no_inception):
    from core.config import TrainConfig
    from core.train import create_run
    t = create_run(TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                               steps=6, device="cpu", threads=1), tmp_path)
    assert run_training(t) == "finished"
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "OMP_NUM_THREADS": "1"}
    env.pop("GAN_STUDIO_INCEPTION_WEIGHTS", None)
    cmd = [sys.executable, "-m", "core", "evaluate", str(t.store.path), "--n", "64", "--device", "cpu"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "SWD" in p.stdout and "laplacian-pyramid" in p.stdout
    assert "FID" in p.stdout and "unavailable" in p.stdout
    assert "GAN_STUDIO_INCEPTION_WEIGHTS" in p.stderr
    lines = (t.store.path / "evaluations.jsonl").read_text().splitlines()
    row = json.loads(lines[-1])
    assert row["metric"] == "swd" and row["step"] == 6 and row["n"] == 64
    assert set(row) >= {"step", "checkpoint", "metric", "value", "std", "n", "feature_net"}
    assert not any(json.loads(x)["metric"] == "fid" for x in lines)
    # Second evaluation uses the cached real statistics and appends (never rewrites).
    p2 = subprocess.run(cmd + ["--metrics", "swd"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p2.returncode == 0, p2.stderr
    assert len((t.store.path / "evaluations.jsonl").read_text().splitlines()) == len(lines) + 1
    assert json.loads((t.store.path / "evaluations.jsonl").read_text().splitlines()[-1])["value"] == row["value"]
