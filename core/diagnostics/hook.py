"""DiagnosticsMonitor: the log-step hook that runs the detectors during training and announces
each finding once when it starts and once when it clears."""
from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .findings import SEVERITY_RANK, Finding, median, series
from .row_checks import d_dominance, exploding_gradients, g_dominance, no_progress, vanishing_gradients
from .samples import d_gap_stats, diversity_stats, memorisation_stats, mode_collapse, novelty_reference, overfitting

if TYPE_CHECKING:
    from ..train.trainer import Trainer

STATE_KEY = "diagnostics"
STATE_VERSION = 1
ROW_KEYS = ("step", "loss/d", "loss/g", "d/real", "d/fake", "grad/g", "grad/d")
HISTORY_KINDS = ("d_dominance", "g_dominance", "vanishing_gradients", "exploding_gradients", "no_progress")
SAMPLE_KINDS = ("mode_collapse", "overfitting")
LABELS = {"d_dominance": "The discriminator dominating", "g_dominance": "A failing discriminator",
          "vanishing_gradients": "Vanishing generator gradients", "exploding_gradients": "Unstable gradients",
          "no_progress": "Stalled sample quality", "mode_collapse": "Mode collapse", "overfitting": "Overfitting"}
N_SAMPLES = 64  # generated images per sample check (and real images they are compared with)
N_DGAP = 128  # training / held-out images D scores for the overfitting gap
MAX_SIDE = 32  # pixel-space measures are taken at <= 32 x 32 (cheap, and memorisation shows at any size)
MAX_REFERENCE = 1024  # training images searched for each sample's nearest neighbour


def default_sample_interval(cfg) -> int:
    """Steps between sample checks: the sample-grid interval, kept within [4 log steps, 500 steps]
    and rounded up to a whole number of log steps (checks happen at log steps)."""
    le = cfg.log_every
    want = max(4 * le, min(cfg.sample_every, 500))
    return -(-want // le) * le


class DiagnosticsMonitor:
    """Runs the cheap history detectors at every log step and the sample-based ones every
    ``sample_every`` steps (from ``sample_warmup`` on); emits ``finding`` events on transitions.

    A finding starts after ``start_checks`` consecutive positive checks (at once when critical) and
    clears after ``clear_checks`` consecutive negative ones (sample checks use their own, smaller,
    counts since they are rarer). Its state lives in ``trainer.extra_state["diagnostics"]`` so a
    resumed run continues where it stopped and does not announce active findings again.
    """

    def __init__(self, trainer: Trainer, window: int = 40, sample_every: int | None = None,
                 sample_warmup: int = 200, start_checks: int = 3, clear_checks: int = 3,
                 sample_start_checks: int = 2, sample_clear_checks: int = 2, n_samples: int = N_SAMPLES):
        cfg = trainer.cfg
        self.sample_every = sample_every or default_sample_interval(cfg)
        self.sample_warmup = sample_warmup
        self.start_checks, self.clear_checks = start_checks, clear_checks
        self.sample_start_checks, self.sample_clear_checks = sample_start_checks, sample_clear_checks
        self.n_samples = n_samples
        self.rows: deque[dict[str, Any]] = deque(maxlen=window)
        self.quality: list[list[float]] = []
        self.active: dict[str, dict[str, Any]] = {}
        self.streak: dict[str, int] = {}
        self.grad_ref: float | None = None
        self.pixel_hist: list[float] = []
        self.last_sample_step = -10**9
        self.last_stats: dict[str, float] = {}
        self.timing = {"history_s": 0.0, "history_n": 0, "sample_s": 0.0, "sample_n": 0}
        self._restored = False
        self._ref: dict[str, Any] | None = None
        gen = torch.Generator().manual_seed(cfg.seed + 4242)  # own RNG: the training RNG stream is untouched
        self._z = torch.randn(n_samples, cfg.latent_dim, generator=gen)
        nc = trainer.num_classes
        self._y = torch.randint(0, nc, (n_samples,), generator=gen) if nc else None

    # ------------------------------------------------------------------------------- the hook
    def __call__(self, trainer: Trainer, row: dict[str, Any]) -> list[dict[str, Any]]:
        if not self._restored:
            self._restore(trainer)
        t0 = time.perf_counter()
        cfg, step = trainer.cfg, int(row.get("step", trainer.step_count))
        slim = {k: float(row[k]) if k != "step" else int(row[k]) for k in ROW_KEYS
                if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)}
        self.rows.append(slim)
        q = row.get("quality/score")
        if isinstance(q, (int, float)) and math.isfinite(q):
            self.quality = (self.quality + [[step, float(q)]])[-50:]
        rows = list(self.rows)
        recent_g = series(rows[-3:], "grad/g")
        if recent_g:  # G's own earlier level: the highest 3-log-step median so far
            self.grad_ref = max(self.grad_ref or 0.0, median(recent_g))
        results: dict[str, Finding | None] = {
            "d_dominance": d_dominance(rows, cfg),
            "g_dominance": g_dominance(rows, cfg),
            "vanishing_gradients": vanishing_gradients(rows, cfg, reference=self.grad_ref),
            "exploding_gradients": exploding_gradients(rows, cfg),
            "no_progress": no_progress([tuple(p) for p in self.quality], cfg),
        }
        events = self._transitions(results, step, self.start_checks, self.clear_checks)
        self.timing["history_s"] += time.perf_counter() - t0
        self.timing["history_n"] += 1
        # The sample checks draw from noise; a translation run's own checks are in core/translate/hooks.py.
        if cfg.task == "generate" and step >= self.sample_warmup and step - self.last_sample_step >= self.sample_every:
            t1 = time.perf_counter()
            self.last_sample_step = step
            stats = self.sample_stats(trainer)
            self.last_stats = stats
            for key, name in (("pixel_ratio", "diag/diversity_pixel"), ("feature_ratio", "diag/diversity_features"),
                              ("dup_rate", "diag/duplicate_rate"), ("effect", "diag/d_train_holdout_gap"),
                              ("nn_ratio", "diag/nn_novelty"), ("copy_rate", "diag/copy_rate")):
                if key in stats and math.isfinite(stats[key]):
                    row[name] = stats[key]
            sres = {"mode_collapse": mode_collapse(stats, cfg, self.pixel_hist, step), "overfitting": overfitting(stats, cfg)}
            if math.isfinite(stats.get("pixel_ratio", float("nan"))):
                self.pixel_hist = (self.pixel_hist + [stats["pixel_ratio"]])[-20:]
            events += self._transitions(sres, step, self.sample_start_checks, self.sample_clear_checks)
            self.timing["sample_s"] += time.perf_counter() - t1
            self.timing["sample_n"] += 1
        trainer.extra_state[STATE_KEY] = self.state_dict(trainer)
        return events

    # -------------------------------------------------------------------------- transitions
    def _transitions(self, results: dict[str, Finding | None], step: int, start_k: int, clear_k: int) -> list[dict]:
        events = []
        for kind, f in results.items():
            st = self.streak.get(kind, 0)
            if f is not None:
                st = st + 1 if st > 0 else 1
                cur = self.active.get(kind)
                if cur is None and (st >= start_k or f.severity == "critical"):
                    self.active[kind] = {"severity": f.severity, "since": step}
                    events.append(f.to_event("started"))
                elif cur is not None and SEVERITY_RANK[f.severity] > SEVERITY_RANK[cur["severity"]]:
                    cur["severity"] = f.severity
                    events.append(f.to_event("escalated", since=cur["since"]))
            else:
                st = st - 1 if st < 0 else -1
                cur = self.active.get(kind)
                if cur is not None and -st >= clear_k:
                    del self.active[kind]
                    label = LABELS.get(kind, kind)
                    events.append({"type": "finding", "kind": kind, "severity": cur["severity"], "status": "cleared",
                                   "since": cur["since"], "evidence": {}, "fix": {}, "suggestion": "",
                                   "explanation": f"{label} (reported at step {cur['since']}) is no longer detected."})
            self.streak[kind] = st
        return events

    # ---------------------------------------------------------------------------- samples
    def _reference(self, trainer: Trainer) -> dict[str, Any]:
        """Real images the sample checks compare with, fixed for the run (cached)."""
        if self._ref is None:
            s = trainer.sampler
            train_x, train_y = s.training_sample(max(N_DGAP, self.n_samples))
            hold = s.holdout(N_DGAP)
            m = min(MAX_REFERENCE, len(s.train_idx))
            ref_x = _small(s.training_sample(m)[0]).flatten(1).cpu()
            hold_small = _small(hold[0]).flatten(1).cpu() if hold is not None else None
            self._ref = {"train_x": train_x, "train_y": train_y, "hold": hold, "ref_x": ref_x,
                         "real_small": _small(train_x[:self.n_samples]).cpu(),
                         "novel_nn": novelty_reference(ref_x, hold_small)}
        return self._ref

    @torch.no_grad()
    def sample_stats(self, trainer: Trainer) -> dict[str, float]:
        """Diversity, memorisation and D train/held-out measures of the current networks.

        Networks run in eval mode under no_grad (BatchNorm statistics and spectral-norm vectors
        are left untouched) with this monitor's own fixed latents.
        """
        ref = self._reference(trainer)
        g, D = trainer.sample_generator, trainer.D
        dev = trainer.device
        modes = (g.training, D.training)
        g.eval()
        D.eval()
        ac = trainer._autocast() if hasattr(trainer, "_autocast") else contextlib.nullcontext()
        try:
            with ac:
                y = self._y.to(dev) if self._y is not None else None
                fake = g(self._z.to(dev), y).float()
                ry = ref["train_y"][:self.n_samples] if ref["train_y"] is not None else None
                ff = D.features(fake, y).float()
                rf = D.features(ref["train_x"][:self.n_samples], ry).float()
                lt = D(ref["train_x"], ref["train_y"]).float()
                lh = D(*ref["hold"]).float() if ref["hold"] is not None else None
        finally:
            g.train(modes[0])
            D.train(modes[1])
        fake_small = _small(fake).cpu()
        stats = diversity_stats(fake_small, ref["real_small"], ff.cpu(), rf.cpu())
        stats.update(memorisation_stats(fake_small, ref["ref_x"], ref["novel_nn"]))
        if lh is not None:
            stats.update(d_gap_stats(lt, lh, trainer.cfg))
        return stats

    # ------------------------------------------------------------------------------ state
    def state_dict(self, trainer: Trainer | None = None) -> dict[str, Any]:
        return {"version": STATE_VERSION, "run": _run_id(trainer), "active": {k: dict(v) for k, v in self.active.items()},
                "streak": dict(self.streak), "rows": [_finite(r) for r in self.rows],
                "quality": [list(p) for p in self.quality], "grad_ref": self.grad_ref,
                "pixel_hist": list(self.pixel_hist), "last_sample_step": self.last_sample_step}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.active = {str(k): dict(v) for k, v in (s.get("active") or {}).items()}
        self.streak = {str(k): int(v) for k, v in (s.get("streak") or {}).items()}
        self.rows.clear()
        self.rows.extend(dict(r) for r in s.get("rows") or [])
        self.quality = [list(p) for p in s.get("quality") or []]
        self.grad_ref = s.get("grad_ref")
        self.pixel_hist = [float(x) for x in s.get("pixel_hist") or []]
        self.last_sample_step = int(s.get("last_sample_step", -10**9))

    def _restore(self, trainer: Trainer) -> None:
        """Adopt the state saved in the checkpoint of this same run (a resume); a fork, whose
        checkpoint comes from another run folder, starts with a clean slate."""
        self._restored = True
        s = trainer.extra_state.get(STATE_KEY)
        if isinstance(s, dict) and s.get("version") == STATE_VERSION and s.get("run") == _run_id(trainer):
            self.load_state_dict(s)


def _small(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float()
    if x.shape[-1] > MAX_SIDE:
        x = F.adaptive_avg_pool2d(x, MAX_SIDE)
    return x


def _finite(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if not (isinstance(v, float) and not math.isfinite(v))}


def _run_id(trainer) -> str | None:
    store = getattr(trainer, "store", None) if trainer is not None else None
    return store.path.name if store is not None else None
