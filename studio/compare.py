"""Compare section of the Runs page: one metric for several runs (quality first), their config diff and best grids."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.runs import RunInfo
from studio import charts, state, ui_state

HEADLINE = "quality/score"
METRIC_NAMES = {"swd": "SWD", "fid": "FID", "kid": "KID"}
INTERNAL = ("diag/", "perf/", "mem/", "epoch", "prog/")  # bookkeeping, shown only on request
MIN_SMOOTH_POINTS = 20  # fewer points than this are drawn as they are (smoothing 2-3 evals wrecks them)
K_PREF = "cmp_pref"  # {metric, smooth, logy, x, internal}: survives page switches and (via ui_state) reloads
X_AXES = {"step": "Step", "minutes": "Wall clock (minutes since start)"}
SKIP_DIFF = ("seed", "data", "name")  # fields that differ between any two runs and say little


def metric_label(col: str, quality: str = "swd") -> str:
    """Friendly name: the headline quality score marked, lower-is-better said, internal keys as they are."""
    q = METRIC_NAMES.get(quality, quality.upper())
    if col == HEADLINE:
        return f"★ Quality ({q}, lower is better)"
    if col.startswith("metric/"):
        key = col.split("/", 1)[1]
        base, _, rest = key.partition("_")
        name = METRIC_NAMES.get(base, base.upper())
        if rest == "std":
            return f"{name} spread (std)"
        if rest.endswith("px"):
            return f"{name} at {rest} (lower is better)"
        return f"{name} (lower is better)" + (f" {rest}" if rest else "")
    return charts.pretty(col)


def is_internal(col: str) -> bool:
    return col.startswith(INTERNAL) or col.endswith("_std")


def metric_options(cols: list[str], internal: bool) -> list[str]:
    """The headline first, then other quality metrics, then losses and the rest; internal keys only if asked."""
    shown = [c for c in cols if internal or not is_internal(c)]
    rank = lambda c: (0 if c == HEADLINE else 1 if c.startswith("metric/") else 2 if c.startswith("loss/") else 3)  # noqa: E731
    return sorted(shown, key=rank)


def default_metric(options: list[str]) -> str:
    for c in (HEADLINE, "metric/swd", "metric/fid", "loss/d"):
        if c in options:
            return c
    return options[0]


def smoothing_window(longest: int) -> int:
    """The moving-average window, or 0 when the curves are too short to smooth."""
    return max(5, longest // 40) if longest >= MIN_SMOOTH_POINTS else 0


def series_for(info: RunInfo, metric: str, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x shown, step, value) of one run's metric; x is the step or minutes since its first row."""
    h = state.histories().metrics(info.path)
    steps, y = h.series(metric)
    if x == "minutes":
        t, ty = h.series(metric, x="time")
        t0 = np.nanmin(h.column("time")) if np.isfinite(h.column("time")).any() else np.nan
        if t.size == y.size and np.isfinite(t0):
            return (t - t0) / 60.0, steps, y
        return np.full(y.size, np.nan), steps, y
    return steps, steps, y


def csv_bytes(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], metric: str) -> bytes:
    frames = [pd.DataFrame({"run": n, "step": s.astype(np.int64), "x": x, metric: y}) for n, x, s, y in rows]
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False)
    return buf.getvalue().encode()


def config_diff(runs: list[RunInfo]) -> pd.DataFrame:
    """One row per config field whose value differs between the runs (friendly names), one column per run."""
    from studio.train_form import label

    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r.config))
    rows = []
    for k in keys:
        vals = [r.config.get(k) for r in runs]
        if k in SKIP_DIFF or all(v == vals[0] for v in vals):
            continue
        rows.append({"field": label(k), **{r.name: "—" if v is None else str(v) for r, v in zip(runs, vals)}})
    return pd.DataFrame(rows)


def best_grid(info: RunInfo) -> tuple[int, Any, str] | None:
    """(step, path, why) of the sample grid at the run's best quality step, else its latest grid."""
    grids = info.samples()
    if not grids:
        return None
    h = state.histories().metrics(info.path)
    cols = charts.quality_columns(h)
    best = charts.best_point(h, state.histories().events(info.path).events(), cols[0]) if cols else None
    if best is not None:
        step, value = best
        s, p = min(grids, key=lambda g: (abs(g[0] - step), -g[0]))
        return s, p, f"best quality {value:.4g} at step {int(step)}"
    return grids[-1][0], grids[-1][1], "latest grid (no quality evaluation)"


def swd_baseline(chosen: list[RunInfo], metric: str) -> float | None:
    """The dataset's real-vs-real SWD when the metric is SWD and the runs share data and size: from the user
    cache, else a button computes it (about 1 s for 512 images at 32 px on a CPU)."""
    from core.metrics.swd_baseline import cached_baseline, compute_baseline

    keys = {(r.config.get("data"), r.config.get("resolution"), r.config.get("channels", 0),
             r.config.get("eval_samples", 512), r.config.get("seed", 0)) for r in chosen}
    swd = metric == "metric/swd" or (metric == HEADLINE and all(r.config.get("eval_metric", "swd") == "swd"
                                                                 for r in chosen))
    if not swd or len(keys) != 1 or None in next(iter(keys)):
        return None
    key = next(iter(keys))
    value = cached_baseline(*key)
    if value is None and st.button("Show the real-vs-real SWD", key="cmp_baseline", icon=":material/straighten:",
                                   help="SWD between two disjoint sets of real images of this dataset: about the "
                                        "best a generator can score. Computed once and kept in the user cache."):
        try:
            value = compute_baseline(*key)
        except Exception as e:  # noqa: BLE001 - a moved or unreadable dataset: say so, draw the chart anyway
            st.caption(f"No baseline: {state.esc(str(e) or type(e).__name__)}")
    return value


def _prefs() -> dict[str, Any]:
    ss = st.session_state
    if K_PREF not in ss:
        saved = ui_state.read().get("compare")
        ss[K_PREF] = {k: v for k, v in saved.items() if isinstance(k, str)} if isinstance(saved, dict) else {}
    return ss[K_PREF]


def _save(**changes: Any) -> None:
    pref = _prefs()
    pref.update(changes)
    ui_state.update(compare=dict(pref))


def compare(runs: list[RunInfo]) -> None:
    st.subheader("Compare runs", divider="gray")
    with_metrics = [r for r in runs if len(state.histories().metrics(r.path)) > 0]
    if len(with_metrics) < 1:
        st.caption("Curves appear here once runs have logged metrics.")
        return
    names = {r.name: r for r in with_metrics}
    ss, pref = st.session_state, _prefs()
    ss["cmp_runs"] = [n for n in ss["cmp_runs"] if n in names] if "cmp_runs" in ss else list(names)[:3]
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    picked = c1.multiselect("Runs", list(names), key="cmp_runs", help="Overlay the same metric for several runs.")
    internal = bool(pref.get("internal", False))
    cols: dict[str, None] = {}
    for n in picked:
        cols.update(dict.fromkeys(state.histories().metrics(names[n].path).columns()))
    options = metric_options(list(cols), internal) or ["loss/g"]
    quality = str(names[picked[0]].config.get("eval_metric", "swd")) if picked else "swd"
    if ss.get("cmp_metric") not in options:  # first visit, back from another page, or runs without it
        ss["cmp_metric"] = pref.get("metric") if pref.get("metric") in options else default_metric(options)
    metric = c2.selectbox("Metric", options, key="cmp_metric", format_func=lambda c: metric_label(c, quality),
                          help="★ marks the headline sample-quality score (lower is better): compare runs by it. "
                               "Losses of different loss functions are not comparable.")
    o1, o2, o3, o4 = st.columns([1, 1, 2.2, 1.4], vertical_alignment="center")
    smooth = o1.toggle("Smooth", value=bool(pref.get("smooth", True)), key="cmp_smooth",
                       help=f"Moving average; curves with fewer than {MIN_SMOOTH_POINTS} points are never smoothed.")
    logy = o2.toggle("Log y", value=bool(pref.get("logy", False)), key="cmp_logy", help="Logarithmic y axis.")
    x = o3.radio("X axis", list(X_AXES), format_func=X_AXES.get, horizontal=True, key="cmp_x",
                 index=list(X_AXES).index(pref.get("x")) if pref.get("x") in X_AXES else 0,
                 label_visibility="collapsed")
    internal_now = o4.toggle("Internal keys", value=internal, key="cmp_internal",
                             help="Also list diagnostics, timing and memory keys (diag/…, perf/…, mem/…, epoch).")
    now = dict(metric=metric, smooth=smooth, logy=logy, x=x, internal=internal_now)
    if any(pref.get(k) != v for k, v in now.items()):
        _save(**now)
        if internal_now != internal:
            st.rerun()
    if not picked:
        st.caption("Pick one or more runs.")
        return
    rows = [(n, *series_for(names[n], metric, x)) for n in picked]
    rows = [r for r in rows if r[3].size]
    if not rows:
        st.caption(f"None of the selected runs logged {metric_label(metric, quality)}.")
        return
    window = smoothing_window(max(r[3].size for r in rows)) if smooth else 0
    base = swd_baseline([names[n] for n in picked], metric)
    fig = charts.overlay([(n, xs, y) for n, xs, _, y in rows], metric, smoothing=window, log_y=logy,
                         title=metric_label(metric, quality), xtitle=X_AXES[x].split(" (")[0].lower(),
                         baseline=(base, f"real vs real {base:.3g}") if base is not None else None)
    st.plotly_chart(fig, width="stretch", key="cmp_chart", config={"displaylogo": False})
    st.download_button("Download CSV", csv_bytes(rows, metric), file_name=f"compare-{metric.replace('/', '_')}.csv",
                       mime="text/csv", icon=":material/download:", key="cmp_csv",
                       help="The compared series (run, step, x shown, value), unsmoothed.")
    chosen = [names[n] for n in picked]
    if len(chosen) >= 2:
        diff = config_diff(chosen)
        with st.expander(f"Config differences ({len(diff)} field{'s' if len(diff) != 1 else ''})",
                         icon=":material/difference:", expanded=True):
            if diff.empty:
                st.caption("The selected runs have the same settings (seed and data aside).")
            else:
                st.dataframe(diff, hide_index=True, width="stretch")
    grids(chosen)


def grids(chosen: list[RunInfo]) -> None:
    """A row of sample grids, one per run, at its best quality step (else its latest grid)."""
    from studio.samples_view import large_png

    shown = [(r, best_grid(r)) for r in chosen[:6]]
    shown = [(r, g) for r, g in shown if g is not None]
    if not shown:
        return
    st.caption("Samples at each run's best step")
    for col, (r, (step, path, why)) in zip(st.columns(max(3, len(shown))), shown):
        with col:
            # Through the bounded reader: a grid in a run folder whose header claims 30000 x 30000 px
            # (a hostile or broken file) is refused before decoding, and the other runs still show.
            png = state.png_file(path)
            if png is None:
                st.caption(f"**{state.esc(r.name)}** · step {step}: its sample grid `{path.name}` cannot be shown "
                           "(not a readable PNG, or too large).")
                continue
            st.image(png, width="stretch")
            st.caption(f"**{state.esc(r.name)}** · step {step} · {why}")
            with st.popover("Enlarge", icon=":material/zoom_in:", width="stretch"):
                st.image(large_png(path) or png, caption=f"{r.name} · step {step}")
