"""Sample-based measures (diversity, memorisation, D's train/held-out gap) and their detectors.

The measures are pure functions of tensors; the detectors are pure functions of the measures.
Distances are root-mean-square per pixel (or per feature), so 0.1 means "on average 0.1 apart
on the [-1, 1] scale" whatever the resolution.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..config import TrainConfig
from .findings import Finding, balance_lrs

# Diversity of generated vs real images (ratios of mean pairwise distances; 1 = as diverse as the data).
COLLAPSE_WARN_RATIO, COLLAPSE_CRIT_RATIO = 0.4, 0.1
DUP_WARN, DUP_CRIT = 0.5, 0.9  # share of generated images with a near-twin among the others
DUP_TAU = 0.2  # near-twin: closer than this fraction of the typical nearest-neighbour distance between real images
FALL_FACTOR = 2.0  # "falling" trend: diversity halved from its best so far ...
FALL_BELOW = 0.6  # ... and now below this ratio
IDENTICAL_RATIO = 0.02  # below this G makes the same image whatever the latent (critical at any step)
LATE_STEPS = 2000  # a generator that never spread out by then is reported even if it never was more diverse
RISING = 1.15  # diversity up 15% over the last two checks = still spreading out (early training), not collapse
# Overfitting: D's outputs on training vs held-out images, as an effect size (mean gap / pooled std).
OVERFIT_EFFECT = 1.0
# Memorisation: generated images closer to a training image than 95% of unseen real images are.
COPY_QUANTILE = 0.05
COPY_WARN = 0.3
COPY_NN_RATIO = 0.5
COPY_MIN_DIVERSITY = 0.5  # ... and only when the samples are reasonably varied (pixel_ratio)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.detach().float().flatten(1).cpu()


def _rms_cdist(a: torch.Tensor, b: torch.Tensor, exact: bool = False) -> torch.Tensor:
    # The matrix-product shortcut loses precision for near-identical rows; exact mode keeps 0 as 0.
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist_if_necessary"
    return torch.cdist(a, b, compute_mode=mode) / math.sqrt(a.shape[1])


def pairwise_stats(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(mean pairwise RMS distance, each row's distance to its nearest other row) of (N, ...) samples."""
    f = _flat(x)
    n = f.shape[0]
    if n < 2:
        return 0.0, torch.zeros(n)
    d = _rms_cdist(f, f, exact=True)
    iu = torch.triu_indices(n, n, 1)
    mean = float(d[iu[0], iu[1]].mean())
    d.fill_diagonal_(float("inf"))
    return mean, d.min(dim=1).values


def diversity_stats(fake: torch.Tensor, real: torch.Tensor, fake_feat: torch.Tensor | None = None,
                    real_feat: torch.Tensor | None = None) -> dict[str, float]:
    """Diversity of a generated batch relative to a real batch of the same size.

    ``pixel_ratio`` / ``feature_ratio``: mean pairwise distance of fakes / of reals, in pixel space
    and in D's feature space; ``dup_rate``: share of fakes whose nearest other fake is closer than
    DUP_TAU x the median nearest-neighbour distance among the reals.
    """
    f_mean, f_nn = pairwise_stats(fake)
    r_mean, r_nn = pairwise_stats(real)
    tau = DUP_TAU * float(r_nn.median()) if len(r_nn) else 0.0
    out = {"pixel_ratio": f_mean / r_mean if r_mean > 0 else float("nan"),
           "dup_rate": float((f_nn < tau).float().mean()) if tau > 0 else float("nan"),
           "pixel_fake": f_mean, "pixel_real": r_mean}
    if fake_feat is not None and real_feat is not None:
        ff, rf = pairwise_stats(fake_feat)[0], pairwise_stats(real_feat)[0]
        out["feature_ratio"] = ff / rf if rf > 0 else float("nan")
    return out


def novelty_reference(reference: torch.Tensor, unseen: torch.Tensor | None) -> torch.Tensor:
    """Nearest-neighbour distances of real images D never trained on to the reference training set
    (or, when there is no held-out set, of each reference image to the others): what "a new image
    from the same distribution" looks like."""
    ref = _flat(reference)
    if unseen is not None and len(unseen):
        return _rms_cdist(_flat(unseen), ref).min(dim=1).values
    d = _rms_cdist(ref, ref)
    d.fill_diagonal_(float("inf"))
    return d.min(dim=1).values


def memorisation_stats(fake: torch.Tensor, reference: torch.Tensor, novel_nn: torch.Tensor) -> dict[str, float]:
    """How close generated images are to their nearest training image, relative to unseen real ones.

    ``nn_ratio``: median fake-to-train NN distance / median unseen-to-train NN distance (1 = as
    novel as real data, -> 0 = copies); ``copy_rate``: share of fakes closer than the
    COPY_QUANTILE quantile of the unseen distances (about COPY_QUANTILE for a perfect generator).
    """
    nn = _rms_cdist(_flat(fake), _flat(reference)).min(dim=1).values
    q = float(torch.quantile(novel_nn.float(), COPY_QUANTILE))
    med = float(novel_nn.median())
    return {"nn_ratio": float(nn.median()) / med if med > 0 else float("nan"),
            "copy_rate": float((nn < q).float().mean()), "nn_fake": float(nn.median()), "nn_unseen": med}


def d_gap_stats(logits_train: torch.Tensor, logits_holdout: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """D's raw outputs on training vs held-out real images: the effect size of the gap (mean
    difference / pooled std) and, for losses with a decision threshold, ADA's r_t-style share of
    'real' verdicts on each (lsgan's threshold is 0.5, bce's and hinge's 0)."""
    a, b = logits_train.detach().float().flatten().cpu(), logits_holdout.detach().float().flatten().cpu()
    pooled = math.sqrt(0.5 * (float(a.var()) + float(b.var()))) if len(a) > 1 and len(b) > 1 else 0.0
    out = {"d_train": float(a.mean()), "d_holdout": float(b.mean()),
           "effect": (float(a.mean()) - float(b.mean())) / pooled if pooled > 0 else 0.0,
           "n_train": len(a), "n_holdout": len(b)}
    if cfg.loss not in ("wgan", "wgan-gp"):
        c = 0.5 if cfg.loss == "lsgan" else 0.0
        out["rt_train"] = float((a > c).float().mean())
        out["rt_holdout"] = float((b > c).float().mean())
    return out


# --------------------------------------------------------------------------------------- detectors
def mode_collapse(stats: dict[str, float], cfg: TrainConfig, history: list[float] | None = None,
                  step: int | None = None) -> Finding | None:
    """Low diversity of generated images from random latents, relative to real data.

    ``stats`` from ``diversity_stats``; ``history``: earlier ``pixel_ratio`` values of this run
    (oldest first) for the trend; ``step``: the training step (None = late enough).

    A generator starts out making nearly the same image for every latent and spreads out as it
    learns, so nothing fires without history or while diversity is still rising (by RISING over
    the last two checks). Then:
    - "identical": pixel ratio below IDENTICAL_RATIO (G ignores its latent) -> critical, at any step;
    - "low spread" (pixel and feature ratios below COLLAPSE_WARN_RATIO) or "near-duplicates" (half
      the samples have a near-twin), once G has been more diverse before in this run (it collapsed
      back) or after LATE_STEPS (it never spread out);
    - "falling": diversity halved from its best and is now below FALL_BELOW.
    Critical when the pixel ratio is below COLLAPSE_CRIT_RATIO or nearly all samples are near-twins.
    """
    pr, fr, dup = stats.get("pixel_ratio"), stats.get("feature_ratio"), stats.get("dup_rate")
    if pr is None or not math.isfinite(pr):
        return None
    fr_ok = fr is not None and math.isfinite(fr)
    dup = dup if dup is not None and math.isfinite(dup) else 0.0
    hist = [h for h in (history or []) if math.isfinite(h)]
    peak = max(hist, default=pr)
    # A generator starts out making nearly the same image for every latent and spreads out as it
    # learns: low diversity counts only once it has stopped growing over the last two checks.
    stuck = bool(hist) and pr < RISING * min(hist[-2:]) + 1e-6
    judged = peak >= COLLAPSE_WARN_RATIO or step is None or step >= LATE_STEPS
    reasons = []
    if stuck and pr < IDENTICAL_RATIO:
        reasons.append("identical")
    elif stuck and judged and pr < COLLAPSE_WARN_RATIO and (not fr_ok or fr < COLLAPSE_WARN_RATIO):
        reasons.append("low spread")
    if stuck and judged and dup >= DUP_WARN:
        reasons.append("near-duplicates")
    if hist and peak > FALL_FACTOR * pr and pr < FALL_BELOW:
        reasons.append("falling")
    if not reasons:
        return None
    severity = "critical" if (pr < COLLAPSE_CRIT_RATIO or dup >= DUP_CRIT) else "warning"
    evidence = {"pixel_ratio": pr, "dup_rate": dup, "best_pixel_ratio": peak, "reasons": reasons}
    if fr_ok:
        evidence["feature_ratio"] = fr
    fix: dict[str, Any] = {}
    how = []
    if cfg.feature_matching == 0:
        fix["feature_matching"] = 1.0
        how.append("feature_matching=1 (G must match the average of D's features on real images, which "
                   "rewards covering the whole data)")
    if cfg.lr_d > cfg.lr_g * 2:
        bal, text = balance_lrs(cfg)
        fix.update(bal)
        how.append(text + " (a D much faster than G pushes G from one mode to the next)")
    elif not how:
        fix.update(lr_g=cfg.lr_g / 2, lr_d=cfg.lr_d / 2)
        how.append(f"both learning rates halved (lr_g={cfg.lr_g / 2:.3g}, lr_d={cfg.lr_d / 2:.3g})")
    detail = {"identical": f"the images differ by only {pr:.3f}x as much as real images do: G ignores its latent input",
              "low spread": (f"generated images are only {pr:.2f}x as different from each other as real images "
                             "are" + (f" ({fr:.2f}x in D's feature space)" if fr_ok else "")),
              "near-duplicates": f"{dup:.0%} of them have a near-identical twin in the batch",
              "falling": f"their diversity fell from {peak:.2f} to {pr:.2f} of the real data's"}
    never = "falling" not in reasons and peak < COLLAPSE_WARN_RATIO
    return Finding(
        "mode_collapse", severity, evidence,
        explanation=("The generator is producing too little variety (mode collapse): "
                     + "; ".join(detail[r] for r in reasons) + ". Different random latents give (nearly) the "
                     "same picture, so G covers only a few of the data's modes."
                     + (" Its variety has never been higher in this run, so G may not be learning at all: "
                        "check the other findings (a dominating D, vanishing gradients) and lr_g." if never else "")),
        suggestion=("Fork with " + "; ".join(how) + ". For a new run, minibatch_std=true lets D see the "
                    "variety of a batch, and the wgan-gp / hinge-sn presets collapse less often."),
        fix=fix)


def overfitting(stats: dict[str, float], cfg: TrainConfig) -> Finding | None:
    """D memorising its training images and/or G reproducing them.

    ``stats``: ``d_gap_stats`` (D's outputs on training vs held-out real images, ADA's heuristic:
    an effect size of at least OVERFIT_EFFECT and 4 standard errors, which a random split never
    shows by chance; at least 8 held-out images) merged with ``memorisation_stats`` (copy_rate >=
    COPY_WARN with nn_ratio <= COPY_NN_RATIO) and optionally ``diversity_stats`` (copies must
    have pixel_ratio >= COPY_MIN_DIVERSITY: a blurry average image is close to everything).
    ADA's r_t shares (rt_train/rt_holdout) are reported as evidence.
    """
    reasons, evidence = [], {}
    eff = stats.get("effect")
    if eff is not None and math.isfinite(eff) and stats.get("n_holdout", 0) >= 8:
        n_t, n_h = max(stats.get("n_train", 1), 1), max(stats.get("n_holdout", 1), 1)
        thr = max(OVERFIT_EFFECT, 4 * math.sqrt(1 / n_t + 1 / n_h))  # 4 standard errors at least
        if eff >= thr:
            reasons.append("d_gap")
            evidence.update(effect=eff, effect_threshold=thr, d_train=stats["d_train"], d_holdout=stats["d_holdout"])
            if "rt_train" in stats:
                evidence.update(rt_train=stats["rt_train"], rt_holdout=stats["rt_holdout"])
    cr, nr = stats.get("copy_rate"), stats.get("nn_ratio")
    pr = stats.get("pixel_ratio")
    # Blurry, averaged images are close to everything: copies must also be about as varied as the data.
    varied = pr is None or not math.isfinite(pr) or pr >= COPY_MIN_DIVERSITY
    if cr is not None and nr is not None and math.isfinite(nr) and cr >= COPY_WARN and nr <= COPY_NN_RATIO and varied:
        reasons.append("copies")
        evidence.update(copy_rate=cr, nn_ratio=nr)
    if not reasons:
        return None
    fix: dict[str, Any] = {}
    if cfg.ada_target == 0:
        fix["ada_target"] = 0.6
        how = ("turn on adaptive augmentation (ada_target=0.6), which augments what D sees exactly as much as "
               "it overfits: flips, rotations, shifts, colour, cutout, without the augmentations leaking into samples")
    elif not cfg.diffaug_policies:
        fix["diffaug"] = "translation,cutout,color"
        how = "turn on DiffAugment (diffaug=translation,cutout,color), which shows D shifted, cut-out and recoloured copies so it cannot memorise"
    elif cfg.instance_noise == 0:
        fix["instance_noise"] = 0.1
        how = "add instance_noise=0.1"
    else:
        fix["lr_d"] = cfg.lr_d / 2
        how = f"halve lr_d (to {cfg.lr_d / 2:.3g})"
    words = []
    if "d_gap" in reasons:
        words.append("the discriminator scores its training images clearly higher than real images it has never "
                     f"seen (effect size {evidence['effect']:.2f}): it is memorising them rather than learning what "
                     "real images look like")
    if "copies" in reasons:
        words.append(f"{cr:.0%} of generated images are nearly identical to a training image (closer than "
                     "95% of unseen real images are)")
    return Finding(
        "overfitting", "warning", evidence,
        explanation="Overfitting to the training set: " + "; ".join(words) + ". This happens with small datasets "
                    "and long runs; samples stop generalising and training soon degrades.",
        suggestion=f"Fork with: {how}. More (or more varied) training images help most; keep the best checkpoint.",
        fix=fix)
