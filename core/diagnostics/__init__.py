"""Training diagnostics: detectors that tell a learner what is going wrong, why, and what to change.

Pure detectors (unit-tested on synthetic histories):
- over metric rows: ``d_dominance``, ``g_dominance``, ``vanishing_gradients``,
  ``exploding_gradients``, ``no_progress`` (quality scores), ``detect_divergence``;
- over sample measures: ``mode_collapse`` (``diversity_stats``), ``overfitting``
  (``d_gap_stats`` + ``memorisation_stats``).
Each returns a ``Finding`` or None. ``DiagnosticsMonitor`` runs them during training (see
docs/diagnostics.md); ``core.train.session`` attaches it to every run that writes a run folder.
"""
from __future__ import annotations

from .findings import SEVERITIES, Finding, LossView
from .hook import STATE_KEY, DiagnosticsMonitor, default_sample_interval
from .row_checks import (
    d_dominance,
    detect_divergence,
    exploding_gradients,
    g_dominance,
    gradient_reference,
    no_progress,
    vanishing_gradients,
)
from .samples import (
    d_gap_stats,
    diversity_stats,
    memorisation_stats,
    mode_collapse,
    novelty_reference,
    overfitting,
    pairwise_stats,
)

HISTORY_DETECTORS = {"d_dominance": d_dominance, "g_dominance": g_dominance,
                     "vanishing_gradients": vanishing_gradients, "exploding_gradients": exploding_gradients}


def run_history_detectors(rows: list[dict], cfg) -> list[Finding]:
    """Every row-based detector over ``rows`` (e.g. a finished run's metrics.jsonl): the findings that fire."""
    out = [f(rows, cfg) for f in HISTORY_DETECTORS.values()]
    scores = [(r["step"], r["quality/score"]) for r in rows if isinstance(r.get("quality/score"), (int, float))]
    out += [no_progress(scores, cfg), detect_divergence(rows, cfg)]
    return [f for f in out if f is not None]


__all__ = ["Finding", "LossView", "SEVERITIES", "DiagnosticsMonitor", "run_history_detectors",
           "d_dominance", "g_dominance", "vanishing_gradients", "exploding_gradients", "no_progress",
           "detect_divergence", "mode_collapse", "overfitting", "diversity_stats", "memorisation_stats",
           "d_gap_stats", "novelty_reference", "pairwise_stats", "gradient_reference", "default_sample_interval",
           "STATE_KEY"]
