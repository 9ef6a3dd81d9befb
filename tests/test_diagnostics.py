"""Diagnostics: pure detectors on synthetic histories and tensors, fixes that fork cleanly, and the
monitor's start/clear transitions, resumable state and side-effect-free sample checks."""
from __future__ import annotations

import math

import pytest
import torch

from core.config import RESUME_LOCKED, TrainConfig
from core.diagnostics import (
    DiagnosticsMonitor,
    Finding,
    d_dominance,
    d_gap_stats,
    detect_divergence,
    diversity_stats,
    exploding_gradients,
    g_dominance,
    memorisation_stats,
    mode_collapse,
    no_progress,
    novelty_reference,
    overfitting,
    run_history_detectors,
    vanishing_gradients,
)
from core.diagnostics.hook import STATE_KEY, default_sample_interval
from core.models.layers import resolve_d_norm
from core.train.setup import SHAPE_FIELDS

BCE = TrainConfig(device="cpu")
LOSSES = {"bce": BCE, "lsgan": BCE.replace(loss="lsgan"), "hinge": BCE.replace(loss="hinge"),
          "wgan": BCE.replace(loss="wgan", n_critic=5, d_norm="none"),
          "wgan-gp": BCE.replace(loss="wgan-gp", n_critic=5, d_norm="layer")}


def rows(n: int, start: int = 20, every: int = 20, **cols) -> list[dict]:
    """``n`` metric rows; each column is a constant, a list (cycled) or a function of the row index."""
    out = []
    for i in range(n):
        r = {"step": start + i * every}
        for k, v in cols.items():
            key = k.replace("__", "/")
            r[key] = v(i) if callable(v) else v[i % len(v)] if isinstance(v, list) else v
        out.append(r)
    return out


def healthy(loss: str, n: int = 40, start: int = 20) -> list[dict]:
    """A plausible healthy history for each loss, with noise (values seen in real runs)."""
    wob = [1.0, 1.08, 0.93, 1.12, 0.9, 1.04, 0.97, 1.1]
    base = {"bce": dict(loss__d=0.65, loss__g=1.1, d__real=0.78, d__fake=0.31),
            "lsgan": dict(loss__d=0.05, loss__g=0.35, d__real=0.85, d__fake=0.2),
            "hinge": dict(loss__d=0.6, loss__g=0.8, d__real=0.95, d__fake=-0.7),
            "wgan": dict(loss__d=-0.4, loss__g=0.2, d__real=0.1, d__fake=-0.3),
            "wgan-gp": dict(loss__d=-8.0, loss__g=4.0, d__real=6.0, d__fake=-2.0)}[loss]
    cols = {k: (lambda i, v=v: v * wob[i % 8]) for k, v in base.items()}
    cols["grad__g"] = lambda i: 4.0 * wob[(i + 3) % 8] * (3.0 if i % 13 == 5 else 1.0)  # occasional 3x spike
    cols["grad__d"] = lambda i: 8.0 * wob[(i + 5) % 8]
    return rows(n, start=start, **cols)


# ------------------------------------------------------------------------------------- Finding
def test_finding_event_is_json_ready():
    f = Finding("d_dominance", "warning", {"loss/d": 0.0123456, "bad": float("nan"), "t": torch.tensor(2.5)},
                "why", "what", {"lr_d": 1e-4})
    ev = f.to_event()
    assert ev["type"] == "finding" and ev["status"] == "started" and ev["fix"] == {"lr_d": 1e-4}
    assert ev["evidence"] == {"loss/d": 0.01235, "bad": "nan", "t": 2.5}
    assert "step" not in ev  # the loop adds it
    with pytest.raises(ValueError):
        Finding("x", "severe", {}, "", "")


# ---------------------------------------------------------------------------- no false alarms
@pytest.mark.parametrize("loss", list(LOSSES))
def test_healthy_histories_raise_nothing(loss):
    cfg = LOSSES[loss]
    for h in (healthy(loss), healthy(loss, start=1000)):
        assert run_history_detectors(h, cfg) == []
        assert vanishing_gradients(h, cfg, reference=12.0) is None


# --------------------------------------------------------------------------------- D dominance
@pytest.mark.parametrize("loss,vals", [("bce", (0.02, 0.995, 0.01)), ("lsgan", (0.002, 0.97, 0.03)),
                                       ("hinge", (0.02, 1.6, -1.7))])
def test_d_dominance_each_loss(loss, vals):
    cfg = LOSSES[loss]
    ld, r, f = vals
    h = healthy(loss, 30) + rows(10, start=620, loss__d=ld, d__real=r, d__fake=f, loss__g=lambda i: 4 + 0.3 * i)
    got = d_dominance(h, cfg)
    assert got is not None and got.kind == "d_dominance" and got.severity in ("warning", "critical")
    assert got.evidence["loss/g_slope_per_log"] > 0 and got.fix
    assert d_dominance(h[:-5], cfg) is None  # not sustained yet: only 5 of the last 8 rows


def test_d_dominance_severity_smoothing_and_critics():
    h = rows(10, loss__d=0.003, d__real=0.999, d__fake=0.002, loss__g=7.0)
    assert d_dominance(h, BCE).severity == "critical"
    smooth = BCE.replace(label_smoothing=0.1)  # D(x) cannot exceed ~0.9, and D's loss has a floor of 0.325
    h = rows(10, loss__d=0.36, d__real=0.89, d__fake=0.02, loss__g=4.0)
    assert d_dominance(h, smooth) is not None and d_dominance(h, BCE) is None
    for loss in ("wgan", "wgan-gp"):  # a critic is meant to win: not applied
        assert d_dominance(rows(10, loss__d=-50.0, d__real=30.0, d__fake=-20.0, loss__g=20.0), LOSSES[loss]) is None


def test_d_dominance_fix_balances_learning_rates():
    h = rows(10, loss__d=0.02, d__real=0.99, d__fake=0.01, loss__g=5.0)
    assert d_dominance(h, BCE.replace(lr_g=2e-5, lr_d=1e-3)).fix == {"lr_g": 2e-4, "lr_d": 2e-4, "label_smoothing": 0.1}
    assert d_dominance(h, BCE.replace(lr_g=1e-4, lr_d=1e-3)).fix == {"lr_d": 1e-4, "label_smoothing": 0.1}
    assert d_dominance(h, BCE).fix == {"lr_d": 1e-4, "label_smoothing": 0.1}


# ------------------------------------------------------------------------------- D failing
def test_g_dominance_at_chance_and_fooled():
    chance = rows(10, start=600, loss__d=1.39, d__real=0.51, d__fake=0.49, loss__g=0.69)
    got = g_dominance(chance, BCE)
    assert got and got.kind == "g_dominance" and "chance level" in got.explanation
    assert g_dominance(rows(10, start=20, loss__d=1.39, d__real=0.51, d__fake=0.49), BCE) is None  # warm-up
    fooled = rows(10, start=600, loss__d=3.0, d__real=0.54, d__fake=0.9, loss__g=0.1)
    got = g_dominance(fooled, BCE)
    assert got and "more real than real" in got.explanation and got.fix == {"lr_d": 4e-4, "n_critic": 2}
    assert g_dominance(rows(10, start=600, loss__d=2.0, d__real=0.02, d__fake=-0.03), LOSSES["hinge"])
    assert g_dominance(rows(10, start=600, loss__d=0.25, d__real=0.52, d__fake=0.49), LOSSES["lsgan"])
    gp = LOSSES["wgan-gp"]
    assert g_dominance(rows(10, start=600, loss__d=2.0, d__real=5.0, d__fake=7.0), gp)
    assert g_dominance(rows(10, start=600, loss__d=-3.0, d__real=5.0, d__fake=2.0), gp) is None


# ------------------------------------------------------------------------------------ gradients
def test_vanishing_gradients():
    h = rows(12, grad__g=[5.0, 6.0, 4.0]) + rows(4, start=260, grad__g=0.02)
    got = vanishing_gradients(h, BCE)
    assert got and got.severity == "warning" and got.evidence["ratio"] < 0.01
    assert got.fix == {"lr_g": 1e-4, "lr_d": 1e-4}
    assert vanishing_gradients(h[:-4] + rows(4, start=260, grad__g=0.001), BCE).severity == "critical"
    assert vanishing_gradients(rows(4, grad__g=0.5), BCE, reference=200.0)  # reference tracked by the monitor
    assert vanishing_gradients(h[:-4] + rows(4, start=260, grad__g=0.5), BCE) is None  # 10x: still fine
    assert vanishing_gradients(rows(3, grad__g=0.0), BCE) is None  # too little history


def test_saturating_g_loss_vanishes_when_d_rejects_fakes():
    sat = BCE.replace(g_saturating=True)
    h = rows(6, grad__g=0.3, d__fake=0.004, d__real=0.99, loss__d=0.01)
    got = vanishing_gradients(h, sat)
    assert got and got.fix == {"g_saturating": False} and "D(G(z))" in got.explanation
    assert vanishing_gradients(h, BCE) is None  # the non-saturating loss keeps its gradient


def test_exploding_gradients_spikes_jumps_and_oscillation():
    base = healthy("bce", 20, start=600)
    spike = base + rows(1, start=1020, grad__d=400.0, grad__g=4.0, loss__d=0.6, loss__g=1.0)
    got = exploding_gradients(spike, BCE)
    assert got and got.severity == "warning" and got.evidence["grad/d_ratio"] > 20
    assert got.fix == {"lr_g": 1e-4, "lr_d": 1e-4}
    huge = base + rows(1, start=1020, grad__d=1e5, grad__g=4.0)
    assert exploding_gradients(huge, BCE).severity == "critical"
    inf = base + rows(1, start=1020, grad__d=float("inf"), grad__g=4.0)
    assert exploding_gradients(inf, BCE).severity == "critical"
    jump = base + rows(1, start=1020, loss__d=45.0, loss__g=30.0, grad__g=4.0, grad__d=8.0)
    got = exploding_gradients(jump, BCE)
    assert got and "loss/d_jump" in got.evidence
    calm = rows(12, start=600, loss__d=lambda i: 0.6 + 0.01 * (-1) ** i)
    growing = calm + rows(12, start=840, loss__d=lambda i: 0.6 + 0.5 * (-1) ** i)
    assert "loss/d_swing_now" in exploding_gradients(growing, BCE).evidence
    ramp = rows(20, start=20, grad__g=lambda i: 0.03 * 1.5 ** i, loss__d=lambda i: -0.01 * 1.5 ** i)
    assert exploding_gradients(ramp, LOSSES["wgan-gp"]) is None  # early ramp-up is not an explosion


# ------------------------------------------------------------------------------- quality trend
def test_no_progress():
    improving = [(i * 500, 10.0 / (1 + i)) for i in range(10)]
    assert no_progress(improving, BCE) is None
    flat = [(i * 500, 2.0 + 0.01 * (i % 2)) for i in range(10)]
    assert no_progress(flat, BCE).severity == "info"
    worse = [(i * 500, v) for i, v in enumerate([5, 4, 3, 2.5, 2.4, 3.5, 3.8, 4.0, 4.2, 4.5])]
    got = no_progress(worse, BCE)
    assert got.severity == "warning" and got.fix == {"lr_g": 1e-4, "lr_d": 1e-4}
    assert no_progress(worse[:5], BCE) is None


def test_detect_divergence():
    assert detect_divergence(healthy("bce", 5), BCE) is None
    assert detect_divergence(rows(2, loss__d=[0.5, float("nan")]), BCE).severity == "critical"
    from_disk = [{"step": 40, "loss/d": None, "loss/g": 1.0, "nonfinite": ["loss/d"]}]
    assert detect_divergence(from_disk, BCE).evidence["non_finite"] == ["loss/d"]
    assert detect_divergence(healthy("bce", 5), BCE, weights_finite=False).kind == "divergence"


# ---------------------------------------------------------------------------- sample measures
def test_diversity_and_mode_collapse():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 16, 16, generator=g) * 2 - 1
    same = real[:1].expand(64, -1, -1, -1)
    s = diversity_stats(same, real, same.flatten(1), real.flatten(1))
    assert s["pixel_ratio"] == pytest.approx(0, abs=1e-6) and s["dup_rate"] == 1.0 and s["feature_ratio"] < 1e-6
    t = diversity_stats(torch.rand(64, 3, 16, 16, generator=g) * 2 - 1, real)
    assert 0.9 < t["pixel_ratio"] < 1.1 and t["dup_rate"] == 0.0
    assert mode_collapse(s, BCE, history=None, step=300) is None  # one check: no trend yet
    got = mode_collapse(s, BCE, history=[0.0], step=300)
    assert got.severity == "critical" and "identical" in got.evidence["reasons"]
    early = {"pixel_ratio": 0.1, "feature_ratio": 0.15, "dup_rate": 0.97}
    assert mode_collapse(early, BCE, history=[0.07, 0.085], step=300) is None  # still spreading out
    assert mode_collapse(early, BCE, history=[0.1, 0.1], step=400) is None  # never diverse, early: not judged
    assert mode_collapse(early, BCE, history=[0.1, 0.1], step=2400).severity == "critical"
    relapse = {"pixel_ratio": 0.3, "feature_ratio": 0.3, "dup_rate": 0.1}
    got = mode_collapse(relapse, BCE, history=[0.5, 0.7, 0.32], step=3000)
    assert got.severity == "warning" and {"low spread", "falling"} <= set(got.evidence["reasons"])
    assert got.fix == {"feature_matching": 1.0}
    assert mode_collapse({"pixel_ratio": 0.8, "feature_ratio": 0.9, "dup_rate": 0.0}, BCE, [0.7, 0.8], 3000) is None


def test_overfitting_from_d_gap_and_copies():
    g = torch.Generator().manual_seed(1)
    gap = d_gap_stats(torch.randn(128, generator=g) + 3, torch.randn(128, generator=g), BCE)
    got = overfitting(gap, BCE)
    assert got and got.evidence["effect"] > 2 and got.fix == {"ada_target": 0.6}
    same = d_gap_stats(torch.randn(128, generator=g), torch.randn(128, generator=g), BCE)
    assert overfitting(same, BCE) is None
    few = d_gap_stats(torch.randn(128, generator=g) + 1.1, torch.randn(6, generator=g) , BCE)
    assert overfitting(few, BCE) is None  # 6 held-out images: too few to judge
    crit = d_gap_stats(torch.randn(128, generator=g) + 3, torch.randn(128, generator=g), LOSSES["wgan-gp"])
    assert "rt_train" not in crit and overfitting(crit, LOSSES["wgan-gp"])

    train = torch.rand(300, 3, 16, 16, generator=g) * 2 - 1
    holdout = torch.rand(40, 3, 16, 16, generator=g) * 2 - 1
    novel = novelty_reference(train, holdout)
    copies = memorisation_stats(train[:64] + 0.001, train, novel)
    assert copies["copy_rate"] == 1.0 and copies["nn_ratio"] < 0.01
    assert overfitting(copies, BCE).evidence["copy_rate"] == 1.0
    fresh = memorisation_stats(torch.rand(64, 3, 16, 16, generator=g) * 2 - 1, train, novel)
    assert fresh["copy_rate"] < 0.2 and 0.8 < fresh["nn_ratio"] < 1.2 and overfitting(fresh, BCE) is None
    loo = novelty_reference(train, None)  # no held-out set: leave-one-out among training images
    assert loo.shape == (300,) and float(loo.min()) > 0


# ------------------------------------------------------------------------- fixes fork cleanly
def _all_findings(cfg: TrainConfig) -> list[Finding]:
    lv_rows = {"bce": (0.02, 0.995, 0.01), "lsgan": (0.002, 0.97, 0.03), "hinge": (0.02, 1.6, -1.7)}
    out = []
    if cfg.loss in lv_rows:
        ld, r, f = lv_rows[cfg.loss]
        out.append(d_dominance(rows(10, loss__d=ld, d__real=r, d__fake=f, loss__g=5.0), cfg))
    out.append(g_dominance(rows(10, start=600, loss__d=3.0, d__real=0.0, d__fake=0.9), cfg))
    out.append(vanishing_gradients(rows(8, grad__g=[5.0, 5.0, 5.0, 5.0, 1e-4]), cfg, reference=5.0))
    out.append(vanishing_gradients(rows(6, grad__g=1.0, d__fake=0.001), cfg))
    out.append(exploding_gradients(healthy(cfg.loss, 20, 600) + rows(1, start=1100, grad__d=1e6), cfg))
    out.append(no_progress([(i, v) for i, v in enumerate([5, 4, 3, 2, 2, 4, 4, 4, 4, 4])], cfg))
    out.append(no_progress([(i, 2.0) for i in range(10)], cfg))
    out.append(detect_divergence(rows(1, loss__d=float("nan")), cfg))
    out.append(mode_collapse({"pixel_ratio": 0.0, "dup_rate": 1.0}, cfg, [0.0], 500))
    out.append(mode_collapse({"pixel_ratio": 0.2, "dup_rate": 0.0}, cfg, [0.6, 0.2], 5000))
    out.append(overfitting({"effect": 5.0, "n_train": 128, "n_holdout": 128, "d_train": 3.0, "d_holdout": 0.0,
                            "rt_train": 1.0, "rt_holdout": 0.2, "copy_rate": 0.8, "nn_ratio": 0.1}, cfg))
    return [f for f in out if f is not None]


@pytest.mark.parametrize("cfg", [*LOSSES.values(), BCE.replace(lr_g=1e-6), BCE.replace(lr_d=1.0, lr_g=0.5),
                                 BCE.replace(g_saturating=True, label_smoothing=0.1, beta1=0.9),
                                 BCE.replace(diffaug="translation", instance_noise=0.2, feature_matching=1.0,
                                             n_critic=3)],
                         ids=lambda c: f"{c.loss}-{c.lr_g:g}-{c.lr_d:g}-{c.g_saturating}-{c.diffaug}")
def test_every_fix_is_a_valid_fork(cfg):
    found = _all_findings(cfg)
    assert len(found) >= 7
    for f in found:
        assert f.kind and f.explanation and f.suggestion, f
        assert f.fix or f.kind == "no_progress", f"{f.kind} offers no fix"
        new = cfg.replace(**f.fix).validate()  # real fields, valid values
        assert not set(f.fix) & set(SHAPE_FIELDS), f"{f.kind} changes the network shape: {f.fix}"
        assert not set(f.fix) & set(RESUME_LOCKED), f.fix
        assert resolve_d_norm(new) == resolve_d_norm(cfg)
        assert new != cfg, f"{f.kind}: the fix changes nothing"


# ----------------------------------------------------------------------------------- monitor
class _Store:
    def __init__(self, name):
        self.path = type("P", (), {"name": name})()


class _StubTrainer:
    """Just what the monitor's history path touches."""

    def __init__(self, cfg=BCE, run="00001-a"):
        self.cfg, self.num_classes, self.extra_state, self.step_count = cfg, 0, {}, 0
        self.store = _Store(run)


def _feed(mon, t, hist):
    events = []
    for r in hist:
        t.step_count = r["step"]
        events += mon(t, dict(r))
    return events


def test_monitor_announces_once_and_clears_once():
    t = _StubTrainer()
    mon = DiagnosticsMonitor(t, sample_warmup=10**9)
    bad = rows(20, start=20, loss__d=0.02, d__real=0.99, d__fake=0.01, loss__g=5.0, grad__g=5.0, grad__d=1.0)
    ev = _feed(mon, t, healthy("bce", 10) + [dict(r, step=r["step"] + 200) for r in bad])
    assert [(e["kind"], e["status"]) for e in ev] == [("d_dominance", "started")]
    assert ev[0]["fix"] and ev[0]["explanation"] and t.extra_state[STATE_KEY]["active"]["d_dominance"]
    ev = _feed(mon, t, healthy("bce", 12, start=700))
    assert [(e["kind"], e["status"]) for e in ev] == [("d_dominance", "cleared")]
    assert ev[0]["since"] > 0 and not t.extra_state[STATE_KEY]["active"]


def test_monitor_state_survives_resume_but_not_fork():
    t = _StubTrainer()
    mon = DiagnosticsMonitor(t, sample_warmup=10**9)
    bad = rows(14, start=400, loss__d=0.02, d__real=0.99, d__fake=0.01, loss__g=5.0)
    assert len(_feed(mon, t, bad)) == 1
    saved = t.extra_state[STATE_KEY]
    import json
    assert json.loads(json.dumps(saved)) == saved  # plain JSON values
    more = rows(6, start=700, loss__d=0.02, d__real=0.99, d__fake=0.01, loss__g=5.0)
    resumed = _StubTrainer()
    resumed.extra_state = {STATE_KEY: saved}
    assert _feed(DiagnosticsMonitor(resumed, sample_warmup=10**9), resumed, more) == []  # not re-announced
    fork = _StubTrainer(run="00002-a-fork")
    fork.extra_state = {STATE_KEY: saved}
    ev = _feed(DiagnosticsMonitor(fork, sample_warmup=10**9), fork, more + rows(6, start=820, loss__d=0.02,
                                                                                  d__real=0.99, d__fake=0.01))
    assert [e["status"] for e in ev] == ["started"]  # the fork's own events.jsonl gets its own start


def test_default_sample_interval():
    assert default_sample_interval(BCE) == 250  # log_every 25, sample_every 250
    assert default_sample_interval(BCE.replace(sample_every=10)) == 100  # at least 4 log steps
    assert default_sample_interval(BCE.replace(sample_every=5000)) == 500
    assert default_sample_interval(BCE.replace(log_every=30, sample_every=100)) == 120


def test_sample_check_leaves_training_untouched(tiny_cfg):
    from core.data import ImageDataset
    from core.train import Trainer
    cfg = tiny_cfg.replace(batch_size=16)
    images = torch.randint(0, 256, (300, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    t = Trainer(cfg, ImageDataset(images, None, [], 3, 16, "synthetic-300", "synthetic"))  # 15 held out
    for _ in range(3):
        t.step()
    mon = DiagnosticsMonitor(t)
    assert isinstance(mon, DiagnosticsMonitor)
    bn = {k: v.clone() for k, v in t.D.state_dict().items()} | {f"G.{k}": v.clone() for k, v in t.G.state_dict().items()}
    rng = torch.get_rng_state()
    stats = mon.sample_stats(t)
    for k in ("pixel_ratio", "feature_ratio", "dup_rate", "nn_ratio", "copy_rate", "effect", "rt_train"):
        assert k in stats and math.isfinite(stats[k]), k
    assert torch.equal(torch.get_rng_state(), rng)  # the training RNG stream is untouched
    after = t.D.state_dict() | {f"G.{k}": v for k, v in t.G.state_dict().items()}
    assert all(torch.equal(bn[k], after[k]) for k in bn)  # BatchNorm statistics too
    assert t.G.training and t.D.training
    row = {"step": 250, "loss/d": 1.0, "loss/g": 1.0, "d/real": 0.6, "d/fake": 0.4}
    t.step_count = 250
    assert mon(t, row) == [] and "diag/diversity_pixel" in row and t.extra_state[STATE_KEY]["last_sample_step"] == 250
