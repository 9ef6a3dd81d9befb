"""Detectors over the recent metric rows (cheap: run at every log step).

Each is a pure function ``(rows, cfg, ...) -> Finding | None``; ``rows`` are metrics.jsonl rows
(oldest first) with ``loss/d``, ``loss/g``, ``d/real``, ``d/fake``, ``grad/g``, ``grad/d``...
They return None both when nothing is wrong and when there is too little history to judge.
"""
from __future__ import annotations

import math
from typing import Any

from ..config import TrainConfig
from .findings import Finding, LossView, balance_lrs, median, series, slope

Rows = list[dict[str, Any]]

# How many recent log rows a "sustained" condition is judged on, and the share that must agree.
SUSTAIN_ROWS = 8
SUSTAIN_FRAC = 0.75
# D at chance is normal at the very start; judge it only after this many steps.
CHANCE_WARMUP_STEPS = 500
# G's gradient norm: a drop below these fractions of its own earlier level (100x, 1000x).
VANISH_WARN, VANISH_CRIT = 1e-2, 1e-3
# bce with g_saturating: G's gradient is scaled by D(G(z)); below this it has all but vanished.
SAT_FACTOR = 0.01
# Gradient spikes: the last few snapshots vs the median of the earlier ones (healthy runs: < 5x).
SPIKE_WARN, SPIKE_CRIT = 20.0, 1000.0
# Loss oscillation: amplitude (mean |step-to-step change|) growing this much between window halves.
OSC_GROWTH = 5.0
# Loss jumps: a recent value this many times the window's median absolute deviation away from its
# median (and at least LOSS_JUMP_FLOOR x the loss's scale: chance level or typical magnitude).
LOSS_JUMP, LOSS_JUMP_FLOOR = 20.0, 0.1
# Quality score (lower is better): "flat" if the recent best is within 2% of the earlier best;
# "worsening" if the recent median is this much above the best so far.
NO_PROGRESS_MIN_EVALS = 6
FLAT_TOL = 0.02
WORSE_FACTOR = 1.3


def _last_step(rows: Rows) -> int:
    for r in reversed(rows):
        if isinstance(r.get("step"), int):
            return r["step"]
    return 0


def _sustained(rows: Rows, pred) -> tuple[int, int]:
    """(rows where pred is True, rows where it could be judged) over the last SUSTAIN_ROWS rows."""
    votes = [pred(r) for r in rows[-SUSTAIN_ROWS:]]
    judged = [v for v in votes if v is not None]
    return sum(judged), len(judged)


def _g(x: float) -> str:
    return f"{x:.3g}"


# --------------------------------------------------------------------------------------------- D wins
def d_dominance(rows: Rows, cfg: TrainConfig) -> Finding | None:
    """D tells real from fake almost perfectly for a sustained window (its loss near its floor,
    D(x) near the real target, D(G(z)) near the fake one); G's loss growing makes it worse.

    Not applied to wgan / wgan-gp: a Wasserstein critic is meant to be trained to optimality, and
    its values have no fixed scale; vanishing_gradients and no_progress cover those runs.
    """
    lv = LossView.of(cfg)
    hit, judged = _sustained(rows, lv.d_wins)
    if judged < SUSTAIN_ROWS or hit < SUSTAIN_FRAC * judged:
        return None
    recent = rows[-SUSTAIN_ROWS:]
    lg, dr, df, ld = (series(recent, k) for k in ("loss/g", "d/real", "d/fake", "loss/d"))
    g_trend = slope(series(rows, "loss/g")[-2 * SUSTAIN_ROWS:])
    evidence = {"loss/d": median(ld), "d/real": median(dr), "d/fake": median(df), "loss/g": median(lg),
                "loss/g_slope_per_log": g_trend, "rows_agreeing": f"{hit}/{judged}",
                "lr_d/lr_g": cfg.lr_d / cfg.lr_g}
    severe = lv.name == "bce" and median(df) <= 0.005
    fix: dict[str, Any] = {}
    ratio = cfg.lr_d / cfg.lr_g
    if ratio > 2:
        bal, how = balance_lrs(cfg)
        fix.update(bal)
    else:
        fix["lr_d"] = cfg.lr_d / 2
        how = f"halve lr_d (from {_g(cfg.lr_d)} to {_g(cfg.lr_d / 2)})"
    if lv.name == "bce" and cfg.label_smoothing == 0:
        fix["label_smoothing"] = 0.1
        how += ", and set label_smoothing=0.1 so D stops pushing its real outputs to exactly 1"
    elif lv.name != "bce" and cfg.instance_noise == 0:
        fix["instance_noise"] = 0.1
        how += ", and set instance_noise=0.1 to blur the real/fake boundary early on"
    rising = " and G's loss keeps rising" if g_trend > 0 else ""
    return Finding(
        "d_dominance", "critical" if severe else "warning", evidence,
        explanation=(f"The discriminator has won: it labels real images as real (D(x)≈{_g(median(dr))}) and "
                     f"generated ones as fake (D(G(z))≈{_g(median(df))}) almost perfectly{rising}. When D is "
                     "this sure, the signal it sends back to G carries little useful direction, so G stops "
                     f"improving. D's learning rate is {_g(ratio)}x G's."),
        suggestion=(f"Fork with a weaker D: {how}. A new run could also use spectral_norm=true or the "
                    "small-dataset preset (DiffAugment) if the dataset is small."),
        fix=fix)


# ------------------------------------------------------------------------------------- D at chance
def g_dominance(rows: Rows, cfg: TrainConfig, warmup_steps: int = CHANCE_WARMUP_STEPS) -> Finding | None:
    """D fails, for a sustained window after a warm-up: it outputs its 'cannot tell' value on real
    and fake images alike with its loss at the chance level, or it scores generated images at
    least as 'real' as real ones with its loss at or above chance (for wgan / wgan-gp: the
    critic's estimate d/real - d/fake is not positive). G then gets no useful signal."""
    lv = LossView.of(cfg)
    if _last_step(rows) < warmup_steps:
        return None
    hit, judged = _sustained(rows, lv.d_failing)
    if judged < SUSTAIN_ROWS or hit < SUSTAIN_FRAC * judged:
        return None
    recent = rows[-SUSTAIN_ROWS:]
    dr, df = median(series(recent, "d/real")), median(series(recent, "d/fake"))
    evidence = {"loss/d": median(series(recent, "loss/d")), "chance_loss/d": lv.chance_d_loss,
                "d/real": dr, "d/fake": df, "rows_agreeing": f"{hit}/{judged}", "lr_d/lr_g": cfg.lr_d / cfg.lr_g}
    if lv.is_critic:
        state = (f"the critic rates generated images at least as highly as real ones (d/real={_g(dr)}, "
                 f"d/fake={_g(df)}), so its estimate of the distance between them is not positive")
    elif lv.d_fooled(recent[-1]) and df > dr + 0.05:
        state = (f"it scores generated images as more real than real ones (D(G(z))={_g(df)} vs D(x)={_g(dr)}) "
                 f"and its loss ({_g(evidence['loss/d'])}) is above the chance level ({_g(lv.chance_d_loss)})")
    else:
        state = (f"its outputs on real and generated images are the same 'cannot tell' value and its loss "
                 f"({_g(evidence['loss/d'])}) sits at the chance level ({_g(lv.chance_d_loss)})")
    if cfg.lr_d < cfg.lr_g:
        fix = {"lr_d": cfg.lr_g}
        how = f"raise lr_d from {_g(cfg.lr_d)} to {_g(cfg.lr_g)} (as high as lr_g)"
    else:
        fix = {"lr_d": min(1.0, cfg.lr_d * 2)}
        how = f"double lr_d (to {_g(fix['lr_d'])})"
    if fix["lr_d"] == cfg.lr_d:  # already at the maximum
        fix = {}
        how = "keep lr_d"
    if cfg.n_critic == 1 or not fix:
        fix["n_critic"] = min(100, cfg.n_critic + 1)
        how += f" and train D more often per G step (n_critic={fix['n_critic']})"
    extra = []
    if cfg.label_smoothing >= 0.2:
        extra.append("lower label_smoothing")
    if cfg.instance_noise >= 0.2:
        extra.append("lower instance_noise")
    return Finding(
        "g_dominance", "warning", evidence,
        explanation=(f"The discriminator is failing: {state}. A D that cannot tell real from generated images "
                     "gives G no direction, so the samples stop improving (early in a run this is normal; here "
                     "it has lasted)."),
        suggestion=f"Fork with a stronger D: {how}" + (f"; also {' and '.join(extra)}" if extra else "") +
                   ". Check the sample grid too: if samples look like noise, D is not learning at all.",
        fix=fix)


# ---------------------------------------------------------------------------------------- gradients
def gradient_reference(rows: Rows, key: str = "grad/g", exclude_last: int = 0) -> float | None:
    """The highest 3-row rolling median of a gradient norm: its 'own earlier level'."""
    g = series(rows[:len(rows) - exclude_last] if exclude_last else rows, key)
    if len(g) < 3:
        return None
    return max(median(g[i:i + 3]) for i in range(len(g) - 2))


def vanishing_gradients(rows: Rows, cfg: TrainConfig, reference: float | None = None,
                        recent: int = 4) -> Finding | None:
    """G's gradient norm has collapsed toward 0 relative to its own earlier level (``reference``,
    e.g. tracked over the whole run; by default taken from the older rows of the window), or,
    with bce's saturating G loss, D(G(z)) -- the factor that loss multiplies G's gradient by --
    has fallen below SAT_FACTOR (the gradient norm itself hides this: D's input gradients grow
    as it gets confident)."""
    g = series(rows, "grad/g")
    df = median(series(rows[-recent:], "d/fake"))
    saturating = cfg.loss == "bce" and cfg.g_saturating
    # The saturating loss log(1 - D(G(z))) scales G's gradient by D(G(z)) itself (the non-saturating
    # one by 1 - D(G(z))): when D rejects the fakes, G's gradient vanishes by construction.
    sat_vanish = saturating and len(series(rows[-recent:], "d/fake")) >= recent and df < SAT_FACTOR
    if len(g) < recent and not sat_vanish:
        return None
    if reference is None:
        reference = gradient_reference(rows, exclude_last=recent)
    cur = median(g[-recent:]) if len(g) >= recent else float("nan")
    ratio = cur / reference if reference and reference > 0 and not math.isnan(cur) else float("nan")
    by_norm = not math.isnan(ratio) and ratio < VANISH_WARN
    if not by_norm and not sat_vanish:
        return None
    severity = "critical" if (by_norm and ratio < VANISH_CRIT) or (sat_vanish and df < SAT_FACTOR / 10) else "warning"
    evidence = {"grad/g_recent": cur, "grad/g_reference": reference, "ratio": ratio}
    if not math.isnan(df):
        evidence["d/fake"] = df
    if sat_vanish:
        evidence["loss_gradient_factor"] = df
    if cfg.loss == "bce" and cfg.g_saturating:
        fix = {"g_saturating": False}
        how = ("switch G to the non-saturating loss (g_saturating=false): the saturating one has almost no "
               "gradient exactly when D rejects G's samples")
    else:
        f = 4 if max(cfg.lr_g, cfg.lr_d) > 1e-3 else 2
        fix = {"lr_g": cfg.lr_g / f, "lr_d": cfg.lr_d / f}
        how = (f"divide both learning rates by {f} (lr_g={_g(cfg.lr_g / f)}, lr_d={_g(cfg.lr_d / f)}): saturated "
               "layers (G's tanh output, a clipped critic) often come from steps that were too large")
    why = []
    if by_norm:
        why.append(f"The generator's gradient has shrunk to {_g(ratio)} of its earlier level ({_g(cur)} vs {_g(reference)}).")
    if sat_vanish:
        why.append(f"With the saturating loss (g_saturating=true) G's gradient is multiplied by D(G(z)), which is "
                   f"now {_g(df)}: D rejects the samples so confidently that G learns {_g(1 / max(df, 1e-12))}x "
                   "slower than with the non-saturating loss.")
    return Finding(
        "vanishing_gradients", severity, evidence,
        explanation=" ".join(why) + (" With (almost) no gradient G's weights stop changing and the samples freeze, "
                                     "however long you train."),
        suggestion=f"Fork with: {how}.", fix=fix)


def exploding_gradients(rows: Rows, cfg: TrainConfig, recent: int = 3,
                        warmup_steps: int = CHANCE_WARMUP_STEPS) -> Finding | None:
    """Gradient-norm spikes (the last few snapshots far above the window's median; non-finite
    norms are critical), loss jumps (far outside the window's usual range) or losses oscillating
    with growing amplitude. Judged on rows after ``warmup_steps`` only (except non-finite norms):
    at the start gradient norms and losses ramp up by orders of magnitude as D learns."""
    evidence: dict[str, Any] = {}
    worst = 0.0
    settled = [r for r in rows if r.get("step", 0) >= warmup_steps]  # norms and losses ramp up early on
    for key in ("grad/g", "grad/d"):
        if any(isinstance(r.get(key), float) and not math.isfinite(r[key]) for r in rows[-recent:]):
            evidence[f"{key}_peak"] = float("inf")
            worst = float("inf")
            continue
        g = series(settled, key)
        if len(g) < recent + 5:
            continue
        base = median(g[:-recent])
        peak = max(g[-recent:])
        if base > 0:
            r = peak / base
            if r >= SPIKE_WARN:
                evidence[f"{key}_peak"], evidence[f"{key}_median"], evidence[f"{key}_ratio"] = peak, base, r
                worst = max(worst, r)
    osc, jumps = [], []
    lv = LossView.of(cfg)
    for key in ("loss/d", "loss/g"):
        x = series(settled, key)
        if len(x) < recent + 8:
            continue
        base = x[:-recent]
        mid = median(base)
        mad = median([abs(v - mid) for v in base])
        floor = LOSS_JUMP_FLOOR * max(lv.chance_d_loss or 0.0, abs(mid), 1e-3)
        dev = max(abs(v - mid) for v in x[-recent:])
        if dev >= LOSS_JUMP * max(mad, floor):
            evidence[f"{key}_jump"], evidence[f"{key}_median"] = max(x[-recent:], key=lambda v: abs(v - mid)), mid
            jumps.append(key)
    for key in ("loss/d", "loss/g"):
        x = series(settled, key)
        if len(x) < 12:
            continue
        d = [abs(b - a) for a, b in zip(x, x[1:])]
        h = len(d) // 2
        a1, a2 = sum(d[:h]) / h, sum(d[h:]) / (len(d) - h)
        scale = max(lv.chance_d_loss or 0.0, median([abs(v) for v in x]), 1e-3)
        if a1 > 0 and a2 / a1 >= OSC_GROWTH and a2 >= 0.25 * scale:
            evidence[f"{key}_swing_before"], evidence[f"{key}_swing_now"] = a1, a2
            osc.append(key)
    if not worst and not osc and not jumps:
        return None
    severity = "critical" if worst >= SPIKE_CRIT else "warning"
    f = 4 if severity == "critical" else 2
    fix: dict[str, Any] = {"lr_g": cfg.lr_g / f, "lr_d": cfg.lr_d / f}
    what = []
    if worst:
        what.append(f"gradient norms spiked to {_g(worst)}x their usual size")
    if jumps:
        what.append(f"{' and '.join(jumps)} jumped far outside {'its' if len(jumps) == 1 else 'their'} recent range")
    if osc:
        what.append(f"{' and '.join(osc)} swing{'s' if len(osc) == 1 else ''} more and more from one log step to the next")
    if cfg.beta1 > 0.5:
        fix["beta1"] = 0.5
    return Finding(
        "exploding_gradients", severity, evidence,
        explanation=("Training is unstable: " + "; ".join(what) + ". Updates this large throw the networks "
                     "around instead of improving them, and often end in NaN (divergence)."),
        suggestion=(f"Fork with both learning rates divided by {f} (lr_g={_g(cfg.lr_g / f)}, lr_d={_g(cfg.lr_d / f)})"
                    + (", beta1=0.5" if "beta1" in fix else "") +
                    ". For a new run, spectral_norm=true or the hinge-sn / wgan-gp presets are more stable."),
        fix=fix)


# ------------------------------------------------------------------------------------------ quality
def no_progress(scores: list[tuple[int, float]], cfg: TrainConfig,
                min_evals: int = NO_PROGRESS_MIN_EVALS, window: int = 12) -> Finding | None:
    """The quality score (lower is better) over the last ``window`` evaluations: worsening (warning)
    or flat (info: the run may simply have converged)."""
    pts = [(int(s), float(v)) for s, v in scores if isinstance(v, (int, float)) and math.isfinite(v)][-window:]
    if len(pts) < min_evals:
        return None
    vals = [v for _, v in pts]
    h = len(vals) // 2
    best_before, best_now, med_now = min(vals[:h]), min(vals[h:]), median(vals[h:])
    scale = max(abs(best_before), 1e-12)
    evidence = {"best_before": best_before, "best_recent": best_now, "median_recent": med_now,
                "latest": vals[-1], "evals": len(vals), "from_step": pts[0][0], "to_step": pts[-1][0]}
    if med_now >= best_before + (WORSE_FACTOR - 1) * scale and vals[-1] >= best_before + (WORSE_FACTOR - 1) * scale:
        return Finding(
            "no_progress", "warning", evidence,
            explanation=(f"Sample quality is getting worse: over the last {len(vals) - h} evaluations the score "
                         f"(lower is better) sits around {_g(med_now)}, against {_g(best_before)} before "
                         f"(step {pts[0][0]} to {pts[-1][0]}). Training is undoing progress it made."),
            suggestion=(f"Use the best checkpoint so far; fork with both learning rates halved "
                        f"(lr_g={_g(cfg.lr_g / 2)}, lr_d={_g(cfg.lr_d / 2)}) to continue more carefully."),
            fix={"lr_g": cfg.lr_g / 2, "lr_d": cfg.lr_d / 2})
    if best_now >= best_before - FLAT_TOL * scale:
        return Finding(
            "no_progress", "info", evidence,
            explanation=(f"Sample quality has stopped improving: the best recent score ({_g(best_now)}) is no "
                         f"better than before ({_g(best_before)}) from step {pts[0][0]} to {pts[-1][0]}."),
            suggestion=("If the samples look good, the run has converged: stop it and keep the best checkpoint. "
                        "If not, a bigger model (g_width/d_width) or another preset needs a new run; "
                        f"lower learning rates (lr_g={_g(cfg.lr_g / 2)}, lr_d={_g(cfg.lr_d / 2)}) sometimes "
                        "squeeze out a little more."),
            fix={"lr_g": cfg.lr_g / 2, "lr_d": cfg.lr_d / 2})
    return None


# ---------------------------------------------------------------------------------------- divergence
def detect_divergence(rows: Rows, cfg: TrainConfig, weights_finite: bool | None = None) -> Finding | None:
    """Non-finite losses in the latest row, or non-finite weights (``weights_finite=False``).

    The training loop already stops such a run as ``diverged`` and logs this finding itself; this
    function serves histories read from disk and callers outside the loop.
    """
    bad = []
    if rows:
        last = rows[-1]
        listed = last.get("nonfinite") or []  # rows read from metrics.jsonl store NaN as null + this list
        for k in ("loss/d", "loss/g"):
            v = last.get(k)
            if k in listed or (isinstance(v, float) and not math.isfinite(v)):
                bad.append(k)
    if weights_finite is False:
        bad.append("weights")
    if not bad:
        return None
    return Finding(
        "divergence", "critical", {"non_finite": bad, "step": _last_step(rows)},
        explanation=("The losses or weights became NaN/infinite: the updates grew without bound, usually because "
                     "a learning rate is too high for this loss and architecture."),
        suggestion=(f"Fork from the last good checkpoint with both learning rates divided by 4 "
                    f"(lr_g={_g(cfg.lr_g / 4)}, lr_d={_g(cfg.lr_d / 4)})."),
        fix={"lr_g": cfg.lr_g / 4, "lr_d": cfg.lr_d / 4})
