"""Plotly figures of a run's metrics (numpy arrays in, downsampled for drawing)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go

from core.run_logs import MetricsHistory, downsample, smooth

MAX_POINTS = 2000
PALETTE = ["#7c3aed", "#ec4899", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#6366f1", "#84cc16"]
PRETTY = {
    "loss/d": "D loss", "loss/g": "G loss", "gp": "gradient penalty", "loss/gp": "gradient penalty",
    "r1": "R1 penalty", "loss/r1": "R1 penalty", "d/real": "D(x) — real", "d/fake": "D(G(z)) — fake",
    "grad/g": "G grad norm", "grad/d": "D grad norm", "lr/g": "G learning rate", "lr/d": "D learning rate",
    "perf/img_per_s": "images / s", "perf/sec_per_step": "s / step", "mem/peak_gb": "peak memory (GB)",
    "perf/threads": "CPU threads", "pl/mean": "path length (mean)", "loss/pl": "path-length penalty",
    "ada/p": "augment probability", "aug/p": "augment probability p", "aug/rt": "r_t = E[sign D(real)]",
    "r2": "R2 penalty", "loss/recon": "D reconstruction (fastgan)",
    "prog/stage": "training size (px)", "prog/alpha": "fade-in α of the newest size",
    "sched/gamma": "R1 weight γ", "sched/r2": "R2 weight", "sched/beta2": "Adam β2",
}
# Written for the diagnostics (the Diagnostics tab explains them), not for a chart of their own.
INTERNAL_PREFIXES = ("diag/",)


def pretty(name: str) -> str:
    """A chart label: the known names, else the key without its group prefix and underscores."""
    if name in PRETTY:
        return PRETTY[name]
    return name.split("/", 1)[-1].replace("_", " ")


def constant_value(h: MetricsHistory, column: str) -> float | None:
    """The value of a column that never changed (finite values only), else None."""
    _, y = h.series(column)
    y = y[np.isfinite(y)]
    if y.size == 0 or not np.allclose(y, y[0], rtol=1e-9, atol=0.0):
        return None
    return float(y[0])


# A translation run's D scores (input, target) pairs, or images of a domain: there is no z to write D(G(z)) of.
TRANSLATION_D = {
    "pix2pix": ("D on real and translated pairs", {"d/real": "D(input, target) — real", "d/fake": "D(input, G(input)) — translated"}),
    "cyclegan": ("D on real and translated images", {"d/real": "D(real image)", "d/fake": "D(translated image)"}),
}


def chart_groups(columns: Iterable[str], loss: str = "bce", task: str = "generate") -> list[tuple[str, list[str], dict]]:
    """(title, columns, options) for each chart, in display order; leftovers go to "Other"."""
    cols = list(columns)
    used: set[str] = set()

    def take(pred) -> list[str]:
        out = [c for c in cols if c not in used and pred(c)]
        used.update(out)
        return out

    critic = loss in ("wgan", "wgan-gp", "hinge")
    d_title, d_opts = ("Critic scores" if critic else "D(x) and D(G(z))"), {}
    if task in TRANSLATION_D:
        d_title, labels = TRANSLATION_D[task]
        d_opts = {"labels": labels}
    groups = [
        ("Losses", take(lambda c: c.startswith("loss/") or c in ("gp", "r1", "r2")), {}),
        (d_title, take(lambda c: c.startswith("d/")), d_opts),
        ("Gradient norms", take(lambda c: c.startswith("grad/")), {"log": True}),
        # 3 significant digits: a smoothed 2e-4 read 0.00020000000000000001 with the default
        ("Learning rates", take(lambda c: c.startswith("lr/")), {"tickformat": ".3~g"}),
        ("Throughput", take(lambda c: c == "perf/img_per_s"), {}),
        # ADA: p rises while r_t is above ada_target (D over-sure of the reals), falls below it.
        ("Adaptive augmentation (ADA)", take(lambda c: c.startswith("aug/")), {}),
        # Progressive growing: the size G and D train at now, and how far its newest doubling has faded in.
        ("Progressive growing: size", take(lambda c: c == "prog/stage"), {}),
        ("Progressive growing: fade-in", take(lambda c: c == "prog/alpha"), {}),
        # R3GAN's cosine schedules (schedule_images > 0); the learning rates are in their own chart above.
        ("Schedule: R1 / R2 weights", take(lambda c: c in ("sched/gamma", "sched/r2")), {"tickformat": ".3~g"}),
        ("Schedule: Adam β2", take(lambda c: c == "sched/beta2"), {"tickformat": ".3~g"}),
    ]
    # Sample quality has its own chart (quality_figure); per-level SWD and diag/* stay out of "Other".
    take(lambda c: c.startswith("metric/") or c.startswith("quality/"))
    take(lambda c: c.startswith("perf/") or c.startswith("mem/") or c in ("step", "time", "epoch"))
    take(lambda c: c.startswith(INTERNAL_PREFIXES))
    groups.append(("Other", take(lambda c: True), {}))
    return [g for g in groups if g[1]]


def _layout(fig: go.Figure, title: str, height: int, opts: dict, xtitle: str = "step") -> go.Figure:
    fig.update_layout(
        # Title on its own line above the legend: side by side they collide in a half-width
        # chart on a laptop screen ("D(x) and D(G(z))" next to two long legend entries).
        title=dict(text=title, x=0, xanchor="left", y=1, yref="container", yanchor="top",
                   pad=dict(t=6), font=dict(size=15)),
        height=height, margin=dict(l=10, r=10, t=58, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1, title=None),
        hovermode="x unified", uirevision=title, template="plotly_white",
    )
    fig.update_xaxes(title=None, showgrid=True, gridcolor="rgba(128,128,128,0.15)", zeroline=False)
    fig.update_yaxes(showgrid=True, gridcolor="rgba(128,128,128,0.15)", zeroline=False,
                     type="log" if opts.get("log") else None, exponentformat="none",
                     tickformat=opts.get("tickformat"), automargin=True)
    return fig


def log_ticks(values: np.ndarray) -> tuple[list[float], list[str]] | None:
    """Tick values and labels for a log axis over ``values``: one per decade when they span two or
    more, else 1-2-5 steps, so labels never crowd each other (plotly labels its minor ticks too)."""
    v = values[np.isfinite(values) & (values > 0)]
    if v.size == 0:
        return None
    lo, hi = int(np.floor(np.log10(v.min()))), int(np.ceil(np.log10(v.max())))
    if hi - lo >= 2:
        vals = [10.0 ** k for k in range(lo, hi + 1)]
    else:
        vals = [m * 10.0 ** k for k in range(lo - 1, hi + 1) for m in (1, 2, 5)]
        vals = [x for x in vals if v.min() / 2 <= x <= v.max() * 2]
    return vals, [f"{x:.3g}" for x in vals]


def figure(h: MetricsHistory, title: str, columns: list[str], opts: dict | None = None, smoothing: int = 0,
           height: int = 280) -> go.Figure:
    opts = opts or {}
    labels = opts.get("labels", {})
    fig = go.Figure()
    for i, c in enumerate(columns):
        x, y = h.series(c)
        name = labels.get(c) or pretty(c)
        if opts.get("log"):
            m = y > 0
            x, y = x[m], y[m]
        color = PALETTE[i % len(PALETTE)]
        if smoothing > 1 and y.size > smoothing:
            xs, ys = downsample(x, y, MAX_POINTS)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(color=color, width=1),
                                     opacity=0.25, showlegend=False, hoverinfo="skip"))
            xs, ys = downsample(x, smooth(y, smoothing), MAX_POINTS)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(color=color, width=2)))
        else:
            xs, ys = downsample(x, y, MAX_POINTS)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if ys.size < 30 else "lines",
                                     name=name, line=dict(color=color, width=2), marker=dict(size=5)))
    fig = _layout(fig, title, height, opts)
    if opts.get("log"):
        ys = [h.series(c)[1] for c in columns]
        ticks = log_ticks(np.concatenate(ys)) if ys else None
        if ticks:
            fig.update_yaxes(tickvals=ticks[0], ticktext=ticks[1])
    if len(columns) > 3:  # a long legend goes under the plot instead of squeezing it from above
        fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0),
                          height=height + 20 * ((len(columns) + 2) // 3), margin=dict(l=10, r=10, t=58, b=40))
    return fig


def overlay(series: list[tuple[str, np.ndarray, np.ndarray]], metric: str, smoothing: int = 0,
            height: int = 360, log_y: bool = False, title: str | None = None, xtitle: str = "step",
            baseline: tuple[float, str] | None = None) -> go.Figure:
    """One line per run for the same metric; curves with a few points get markers, and are smoothed only
    when longer than the window; ``baseline`` (value, label) is drawn as a dashed reference line."""
    fig = go.Figure()
    for i, (name, x, y) in enumerate(series):
        if smoothing > 1 and y.size > smoothing:
            y = smooth(y, smoothing)
        xs, ys = downsample(x, y, MAX_POINTS)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if y.size <= 50 else "lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2)))
    if baseline is not None and np.isfinite(baseline[0]) and (baseline[0] > 0 or not log_y):
        fig.add_hline(y=baseline[0], line=dict(color="#6b7280", dash="dash", width=1),
                      annotation_text=baseline[1], annotation_position="bottom right")
    fig = _layout(fig, title or pretty(metric), height, {"log": log_y})
    if xtitle != "step":
        fig.update_xaxes(title=dict(text=xtitle, font=dict(size=12)))
    return fig


# ------------------------------------------------------------------ sample quality
QUALITY_COLUMNS = ("metric/swd", "metric/fid", "metric/kid")
QUALITY_LABELS = {"metric/swd": "SWD (no downloaded weights)", "metric/fid": "FID (Inception-v3)",
                  "metric/kid": "KID (Inception-v3)", "quality/score": "quality score"}


def quality_columns(h: MetricsHistory) -> list[str]:
    """The sample-quality columns worth drawing: each tracked metric, or quality/score alone when a
    run logged only that (it duplicates the tracked metric otherwise)."""
    cols = set(h.columns())
    out = [c for c in QUALITY_COLUMNS if c in cols]
    if not out and "quality/score" in cols:
        out = ["quality/score"]
    return out


def best_point(h: MetricsHistory, events: list[dict], column: str) -> tuple[float, float] | None:
    """(step, value) of the best score: the latest ``metric`` event marked best (the checkpoint kept as
    checkpoints/best.pt), else the minimum of ``column`` (lower is better)."""
    metric = column.split("/", 1)[-1]
    for e in reversed(events):
        if e.get("type") != "metric" or not e.get("best"):
            continue
        if column != "quality/score" and e.get("metric") not in (None, metric):
            continue
        step = e.get("best_step", e.get("step"))
        value = e.get("best_value", e.get("value"))
        if isinstance(step, (int, float)) and isinstance(value, (int, float)) and np.isfinite(value):
            return float(step), float(value)
        break
    x, y = h.series(column)
    if y.size == 0:
        return None
    i = int(np.argmin(y))
    return float(x[i]), float(y[i])


def quality_figure(h: MetricsHistory, columns: list[str], best: tuple[float, float] | None,
                   height: int = 280) -> go.Figure:
    """Sample quality over training (lower is better), the best step marked with a star."""
    fig = go.Figure()
    for i, c in enumerate(columns):
        x, y = h.series(c)
        xs, ys = downsample(x, y, MAX_POINTS)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=QUALITY_LABELS.get(c, c),
                                 line=dict(color=PALETTE[(i + 2) % len(PALETTE)], width=2), marker=dict(size=6)))
    if best is not None:
        fig.add_trace(go.Scatter(x=np.array([best[0]]), y=np.array([best[1]]), mode="markers",
                                 name=f"best (step {int(best[0]):,})",
                                 hovertemplate="best: %{y:.4g} at step %{x:,}<extra></extra>",
                                 marker=dict(symbol="star", size=16, color="#f59e0b",
                                             line=dict(color="#92400e", width=1))))
    title = "Sample quality"  # "(lower is better)" is the y axis title: a long title is cut at 1024 px
    fig = _layout(fig, title, height, {})
    fig.update_yaxes(title=dict(text="lower is better", font=dict(size=11)))
    # The same step axis as the loss charts (0 to the latest logged step): evaluations are sparse,
    # and with one or two points plotly would otherwise zoom to a 999-1000.5 axis.
    steps = h.column("step")
    steps = steps[np.isfinite(steps)]
    if steps.size:
        last = max(float(steps.max()), best[0] if best else 0.0)
        # A little room left of 0 too: the first tick label was cut in half at the plot's edge.
        fig.update_xaxes(range=[-0.03 * last, last * 1.03 or 1], tickformat=",d")
    # Legend under the plot: the metric names are long and would cover the title.
    # Below the tick labels (at y=-0.12 it covered them), with the height it takes added.
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
                      height=height + 30, margin=dict(l=10, r=10, t=58, b=50))  # same plot top as its neighbours
    return fig
