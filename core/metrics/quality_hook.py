"""Periodic quality evaluation during training: adds metric/* to log rows, keeps checkpoints/best.pt by it."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from . import laplacian_swd as swd_mod
from .evaluate import generate_images, real_features, real_swd_stats, select_real
from .features import FeatureNetUnavailable, extract, get_feature_net

if TYPE_CHECKING:
    from ..train.trainer import Trainer

MONITOR_METRICS = ("swd", "fid", "kid")
BEST_NAME = "best.pt"


def quality_hooks(trainer: Trainer) -> list:
    """The periodic quality monitor for this trainer's run (none when eval_every is 0 or there is no run folder)."""
    every = trainer.cfg.eval_every
    if trainer.store is not None and trainer.cfg.task != "generate":  # held-out L1/PSNR instead of SWD/FID
        from ..translate.hooks import TranslationMonitor
        return [TranslationMonitor(trainer)]
    if every <= 0 or trainer.store is None:
        return []
    return [QualityMonitor(trainer, every)]


class QualityMonitor:
    """A log hook: on the first log step at or after each multiple of ``eval_every`` and at a run's
    last log step, scores ``eval_samples`` images from the EMA generator (fixed latents, eval mode,
    no grad, own RNG so training is unchanged) against cached real statistics. Lower ``quality/score`` is better."""

    def __init__(self, trainer: Trainer, every: int):
        cfg = trainer.cfg
        self.every = every
        self.n = max(16, cfg.eval_samples)
        self.metric = cfg.eval_metric.lower()
        self.seed = cfg.seed
        self.disabled = False
        self.pending: list[dict[str, Any]] = []
        self._real: torch.Tensor | None = None
        self._ref: Any = None
        self._net: Any = None
        if self.metric not in MONITOR_METRICS:
            self.pending.append(_warning(f"eval_metric {self.metric!r} cannot be tracked during training "
                                         f"(valid: {', '.join(MONITOR_METRICS)}); tracking SWD instead."))
            self.metric = "swd"

    # ------------------------------------------------------------------ hook
    def __call__(self, t: Trainer, row: dict[str, Any]) -> list[dict[str, Any]] | None:
        events, self.pending = self.pending, []
        state = t.extra_state.setdefault("metrics", {})
        last = state.get("last_step", 0) if isinstance(state.get("last_step"), int) else 0
        s = t.step_count
        periodic = s // self.every > last // self.every
        # The end of a run is scored too (when it trained past the first evaluation's step), so
        # the final generator has a score and can become best.pt.
        final = t.finishing and s > last and s >= self.every
        if self.disabled or not (periodic or final):
            return events or None
        try:
            events.extend(self._evaluate(t, row, state))
        except Exception as e:  # a metric failure must never end the training run
            self.disabled = True
            events.append(_warning(f"Periodic quality evaluation failed and is off for this session: "
                                   f"{type(e).__name__}: {e}"))
        return events or None

    # ------------------------------------------------------------------ work
    def _prepare(self, t: Trainer) -> None:
        """Real-side statistics, once per session (and from the disk cache across sessions)."""
        if self._real is not None:
            return
        self._real = select_real(t.dataset.images, self.n, self.seed)
        fp = t.dataset.fingerprint
        if self.metric in ("fid", "kid"):
            try:
                self._net = get_feature_net("inception")
            except FeatureNetUnavailable as e:
                self.pending.append(_warning(f"Tracking SWD instead of {self.metric.upper()}: {e}"))
                self.metric = "swd"
        if self.metric == "swd":
            ref, _ = real_swd_stats(self._real, fp, self.seed)
            # Descriptors live where the fakes are scored (the GPU when training on one).
            self._ref = ref.to(t.device if t.device.type == "cuda" else "cpu")
        else:
            feats, _ = real_features(self._net, self._real, fp, self.seed, device=t.device)
            self._ref = feats

    @torch.no_grad()
    def _evaluate(self, t: Trainer, row: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        self._prepare(t)
        events, self.pending = self.pending, []
        fake = generate_images(t.sample_generator, self.n, self.seed, batch_size=max(64, t.cfg.batch_size),
                               device=t.device, autocast=getattr(t, "_autocast", None))
        if self.metric == "swd":
            dev = t.device if t.device.type == "cuda" else torch.device("cpu")
            levels = swd_mod.swd(self._ref, fake.to(dev), seed=self.seed)
            value, std = levels.pop("avg"), None
            for r, v in levels.items():
                row[f"metric/swd_{r}"] = v
        else:
            from . import scores
            f = extract(self._net, fake, 64, device=t.device)["features"]
            if self.metric == "fid":
                value, std = scores.fid(self._ref, f), None
            else:
                value, std = scores.kid(self._ref, f, seed=self.seed)
        dt = time.perf_counter() - t0
        s = t.step_count
        row[f"metric/{self.metric}"] = value
        if std is not None:
            row[f"metric/{self.metric}_std"] = std
        row["quality/score"] = value
        row["perf/eval_s"] = dt
        if state.get("metric") != self.metric or state.get("n") != self.n:
            # A different metric or sample count is not comparable with the old best.
            state.clear()
        state.update(metric=self.metric, n=self.n, last_step=s, last=value)
        best = state.get("best")
        improved = math.isfinite(value) and (best is None or value < best) and t.weights_finite()
        if improved:
            state.update(best=value, best_step=s)
            # The loop writes best.pt right after the hooks: under DDP saving the state is a
            # collective, which this rank-0-only hook must not enter alone.
            t.best_requested = True
        events.append({"type": "metric", "metric": self.metric, "value": value, "std": std, "n": self.n,
                       "best": improved, "best_value": state.get("best"), "best_step": state.get("best_step"),
                       "seconds": round(dt, 3),
                       **({"path": f"checkpoints/{BEST_NAME}"} if improved else {})})
        return events


def _warning(message: str) -> dict[str, Any]:
    return {"type": "warning", "message": message}
