"""Compare section of the Runs page: overlay one metric for several runs."""
from __future__ import annotations

import streamlit as st

from core.runs import RunInfo
from studio import charts, state


def compare(runs: list[RunInfo]) -> None:
    st.subheader("Compare runs", divider="gray")
    with_metrics = [r for r in runs if len(state.histories().metrics(r.path)) > 0]
    if len(with_metrics) < 1:
        st.caption("Curves appear here once runs have logged metrics.")
        return
    names = {r.name: r for r in with_metrics}
    c1, c2, c3 = st.columns([3, 1.4, 0.8], vertical_alignment="bottom")
    ss = st.session_state
    ss["cmp_runs"] = [n for n in ss["cmp_runs"] if n in names] if "cmp_runs" in ss else list(names)[:3]
    picked = c1.multiselect("Runs", list(names), key="cmp_runs",
                            help="Overlay the same metric for several runs.")
    cols: dict[str, None] = {}
    for n in picked:
        for c in state.histories().metrics(names[n].path).columns():
            cols.setdefault(c, None)
    metrics = list(cols) or ["loss/g"]
    default = "loss/g" if "loss/g" in metrics else metrics[0]
    if st.session_state.get("cmp_metric") not in metrics:
        st.session_state["cmp_metric"] = default
    metric = c2.selectbox("Metric", metrics, key="cmp_metric", format_func=charts.pretty,
                          help="Which logged value to compare.")
    smooth = c3.toggle("Smooth", key="cmp_smooth", value=True, help="Moving average over noisy curves.")
    if not picked:
        st.caption("Pick one or more runs.")
        return
    series = []
    for n in picked:
        x, y = state.histories().metrics(names[n].path).series(metric)
        if y.size:
            series.append((n, x, y))
    if not series:
        st.caption(f"None of the selected runs logged {metric}.")
        return
    longest = max(s[2].size for s in series)
    st.plotly_chart(charts.overlay(series, metric, smoothing=max(5, longest // 40) if smooth else 0),
                    width="stretch", key="cmp_chart", config={"displaylogo": False})
