"""Monitor page: the live dashboard of one run (this server's job, a CLI run, or any run folder)."""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.run_logs import checkpoint_problems, metrics_problems
from core.runs import ACTIVE_STATES, RunInfo, list_runs, load_run, read_control
from core.units import human_duration
from studio import actions, charts, samples_view, state
from studio.shortcuts import SHORTCUTS_CAPTION, keyboard_shortcuts
from studio.sidebar import tab_title
from studio.tables import long_text_table

K_SELECT = "monitor_run"
K_LIVE = "monitor_live"
K_SMOOTH = "monitor_smooth"
SEVERITY = {"critical": ("error", ":material/report:"), "warning": ("warning", ":material/warning:"),
            "info": ("info", ":material/info:")}


def pick_run(runs: list[RunInfo]) -> RunInfo | None:
    options = [str(r.path) for r in runs]
    names = {str(r.path): r for r in runs}
    ss = st.session_state
    want = ss.get(state.K_MONITOR_RUN)
    q = st.query_params.get("run")
    if q and (want not in names or Path(want).name != q):  # a link (or a reload) asked for this run
        want = next((p for p in options if Path(p).name == q), want)
    if want not in names:
        job = state.active_job()
        want = str(job.run_dir) if job is not None and str(job.run_dir) in names else options[0]
    ss[K_SELECT] = want
    ss[state.K_MONITOR_RUN] = want

    def on_change() -> None:
        ss[state.K_MONITOR_RUN] = ss[K_SELECT]
        st.query_params["run"] = Path(ss[K_SELECT]).name

    def fmt(p: str) -> str:
        r = names[p]
        return f"{r.name}  ·  {r.state}"

    # Toggles sized to their labels (in 1/6 of the width they read "L…" and "S…" at 1024 px).
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    row = c2.container(horizontal=True, gap="small", horizontal_alignment="right")
    c3 = row
    sel = c1.selectbox("Run", options, key=K_SELECT, format_func=fmt, on_change=on_change,
                       help="Any run folder under the runs root: runs started here, from the command line, "
                            "or by another machine writing into this folder.")
    row.toggle("Live", key=K_LIVE, width="content", help="Refresh charts every few seconds. Turn off to zoom and pan a chart "
                                       "without it resetting.")
    c3.toggle("Smooth", key=K_SMOOTH, width="content", help="Overlay a moving average on noisy curves.")
    try:
        st.query_params["run"] = Path(sel).name
    except Exception:  # noqa: BLE001
        pass
    return names.get(sel)


# ------------------------------------------------------------------ live header
def header(run_dir: str, drawn_state: str) -> None:
    info = load_run(run_dir)
    active = info.state in ACTIVE_STATES
    # Started, paused, resumed or ended since the page was drawn: redraw it all, so the run selector
    # says so too and the live parts get the right refresh rate.
    if info.state != drawn_state:
        st.rerun()
    if active:  # the browser tab shows the shown run's progress (the sidebar card does on other pages)
        st.set_page_config(page_title=tab_title(info.name, info.state, info.step, info.total_steps))
    ev = state.histories().events(run_dir)
    crit = [f for f in ev.active_findings() if f.get("severity") == "critical"]
    st_ = info.status

    t1, t2 = st.columns([1, 1], vertical_alignment="center")
    with t1:
        cfg = info.config
        st.markdown(f"### {state.esc(info.name)}")
        badge = state.state_label(info.state)
        if crit:
            badge += f" :red-badge[:material/report: {len(crit)} critical finding{'s' if len(crit) > 1 else ''}]"
        family = cfg.get("arch") if cfg.get("task", "generate") == "generate" else cfg.get("task")  # pix2pix, not dcgan
        desc = " · ".join(str(x) for x in (family, cfg.get("loss"), state.dataset_label(cfg, info.meta),
                                            f"{cfg.get('resolution')}px" if cfg.get("resolution") else None,
                                            st_.get("device"), state.ddp_label(info.meta)) if x)
        st.markdown(f"{badge}  {state.esc(desc)}")
    with t2:
        controls(info, active)

    frac, budget = state.run_progress(info)
    # A wrapping row: in five fixed columns the labels were cut ("Imag…", "Elap…") at 1024 px.
    row = st.container(horizontal=True, gap="small")
    c = [row] * 5
    c[0].metric("Step", f"{info.step:,}", help="Generator steps done.")
    c[1].metric("Of", budget or "—", help="The run's budget: total steps, and/or minutes of training (whichever ends first).")
    ips = st_.get("img_per_s")
    thr = st_.get("threads")
    # A run that is not training keeps showing its last measured speed (labelled as such).
    c[2].metric("Images / s" if active else "Images / s (last)", f"{ips:,.0f}" if isinstance(ips, (int, float)) else "—",
                help=("Real images seen per second (recent average)." if active else
                      "Real images seen per second over the last logged steps, while it was training.") + (
                    f" Training uses {thr} CPU thread(s) now; with threads = 0 (auto) the count adapts to "
                    "what else is running on the CPU." if isinstance(thr, int) and active else ""))
    c[3].metric("ETA", human_duration(st_.get("eta_s")) if active else "—", help="Time left at the current speed.")
    c[4].metric("Elapsed", human_duration(st_.get("elapsed_s")), help="Training time so far, over every session of this run (pauses excluded).")
    st.progress(frac, text=st_.get("message") or f"{100 * frac:.0f}%")

    if info.state in ("failed", "diverged"):
        err = ev.last_error()
        msg = (err or {}).get("message") or info.last_error() or st_.get("message") or "no error message recorded"
        state.show_error(f"This run {info.state}" + (f" at step {err['step']:,}" if err and isinstance(
            err.get("step"), int) else "") + f": {msg}")
    elif info.state == "interrupted":
        st.warning("This run stopped updating more than five minutes ago without finishing: the process that "
                   "trained it is gone. **Resume** continues from its latest checkpoint.", icon=":material/link_off:")
    problems = list(info.problems) + checkpoint_problems(run_dir) + metrics_problems(
        state.histories().metrics(run_dir), info.name, active=active)
    for p in problems:
        st.warning(p, icon=":material/broken_image:")
    for e in ev.rollbacks():  # on_diverge=rollback happened: the curves jump back here
        st.info(e.get("message") or "Rolled back to the last good checkpoint.", icon=":material/undo:")


def controls(info: RunInfo, active: bool) -> None:
    run_dir = info.path
    # The buttons act in on_click callbacks, which run before this is drawn: the control file read
    # here already holds the request, so "Pausing…" shows at once rather than at the next refresh.
    ctl = read_control(run_dir)
    paused = info.state == "paused"
    asked = ctl.get("state")

    def button(label: str, key: str, icon: str, action: str, help: str, **kw) -> None:  # noqa: A002
        st.button(label, key=key, icon=icon, help=help, on_click=actions.control, args=(run_dir, action), **kw)

    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        if active:
            if paused:
                button("Resume", "ctl_resume", ":material/play_arrow:", "resume", "Continue training.",
                       type="primary")
            elif asked == "paused":
                button("Pausing…", "ctl_pausing", ":material/hourglass_top:", "resume",
                       "The run pauses after its current step. Click to cancel the pause.")
            else:
                button("Pause", "ctl_pause", ":material/pause:", "pause",
                       "Pause after the current step; the run keeps its place.")
            button("Stop", "ctl_stop", ":material/stop:", "stop",
                   "Save a checkpoint and stop. You can resume it later from the Runs page.",
                   disabled=asked == "stopped")
            button("Save checkpoint now", "ctl_ckpt", ":material/save:", "checkpoint",
                   "Write a full checkpoint at the next step, without stopping.")
        elif info.config:
            actions.resume_popover(info, key="mon_resume", width="content", on_monitor=True)
            actions.fork_popover(info, key="mon_fork", width="content", on_monitor=True)
    if active and asked == "stopped":
        st.caption("Stopping… (the run saves a checkpoint first)")
    elif active and asked == "paused" and not paused:
        st.caption("Pausing… (after the current step)")


# ------------------------------------------------------------------ live charts and samples
def live_body(run_dir: str, loss: str) -> None:
    h = state.histories().metrics(run_dir)
    info = load_run(run_dir)
    n_find = len(state.histories().events(run_dir).active_findings())
    large = bool(st.session_state.get(samples_view.K_LARGE))
    if large:  # the grids across the page, above the charts
        samples(info, large=True)
    left, right = (st.container(), None) if large else st.columns([2.3, 1], gap="medium")
    with left:
        chart_tab, diag_tab, log_tab = st.tabs(
            [":material/show_chart: Charts",
             f":material/stethoscope: Diagnostics{f' ({n_find})' if n_find else ''}",
             ":material/list: Event log"])
        with chart_tab:
            draw_charts(h, info, loss)
        with diag_tab:
            diagnostics(info)
        with log_tab:
            event_log(run_dir)
    if right is not None:
        with right:
            samples(info)


def draw_charts(h, info: RunInfo, loss: str) -> None:  # noqa: ANN001
    if len(h) == 0:
        every = info.config.get("log_every", 25)
        st.info(f"Waiting for the first metrics — they are written every {every} steps.",
                icon=":material/hourglass_top:")
        return
    smoothing = max(5, len(h) // 40) if st.session_state.get(K_SMOOTH) else 0
    groups = charts.chart_groups(h.columns(), loss, info.config.get("task", "generate"))
    # A learning rate that never changed is a number, not a chart (a flat line that read as 0).
    lr_cols = next((names for title, names, _ in groups if title == "Learning rates"), [])
    lrs = {c: charts.constant_value(h, c) for c in lr_cols}
    if lr_cols and all(v is not None for v in lrs.values()):
        groups = [g for g in groups if g[0] != "Learning rates"]
    draws = [(f"chart_{title}", lambda t=title, n=names, o=opts: charts.figure(h, t, n, o, smoothing=smoothing))
             for title, names, opts in groups]
    qcols = charts.quality_columns(h)
    best = charts.best_point(h, state.histories().events(info.path).events(("metric",)), qcols[0]) if qcols else None
    if qcols:
        draws.insert(0, ("chart_quality", lambda: charts.quality_figure(h, qcols, best)))
    for i in range(0, len(draws), 2):
        cols = st.columns(2)
        for col, (key, make) in zip(cols, draws[i:i + 2]):
            with col:
                st.plotly_chart(make(), width="stretch", key=key, config={"displaylogo": False})
    if qcols:
        note = (f":material/star: Best {charts.QUALITY_LABELS.get(qcols[0], qcols[0])}: "
                f"{state.fmt_num(best[1])} at step {int(best[0]):,}" if best else "")
        if (info.path / "checkpoints" / "best.pt").exists():
            note += " — its weights are kept as `checkpoints/best.pt`."
        if "metric/swd" in qcols:
            note += (" SWD is a sliced Wasserstein distance between image patches (Laplacian pyramid): it needs no "
                     "downloaded network, so it is not comparable with published FID numbers.")
        st.caption(note)
    else:
        every = info.config.get("eval_every", 1000)
        if isinstance(every, int) and every > 0:
            st.caption(f":material/insights: Sample quality (SWD, no downloaded weights) is scored every "
                       f"{every:,} steps; the chart appears after the first score.")
        else:
            st.caption(":material/insights: Sample-quality scoring is off for this run (`eval_every` = 0); "
                       "evaluate a checkpoint on the Runs page instead.")
    if lr_cols and all(v is not None for v in lrs.values()):
        st.caption(":material/speed: Learning rate, constant: " + " · ".join(
            f"{charts.pretty(c).replace(' learning rate', '')} {v:.3g}" for c, v in lrs.items()))
    last_step = h.last("step")
    st.caption(f"{len(h):,} metric rows · last logged step {int(last_step):,}" if last_step is not None else "")


def samples(info: RunInfo, large: bool = False) -> None:
    with st.container(border=True):
        samples_view.generated(info, large)
    if large:
        with st.expander("Real images", icon=":material/photo_library:"):
            samples_view.reals(info, large)
    else:
        with st.container(border=True):
            samples_view.reals(info, large)


def _since(f: dict) -> int | None:
    v = f.get("since", f.get("step"))
    return v if isinstance(v, int) else None


def _fix_text(fix: dict) -> str:
    return ", ".join(f"`{k}` = {state.fmt_num(v) if isinstance(v, float) else v}" for k, v in fix.items())


def diagnostics(info: RunInfo) -> None:
    """The latest record per finding kind wins: ``started`` and ``escalated`` are current problems,
    ``cleared`` ones are listed as resolved."""
    ev = state.histories().events(info.path)
    findings = ev.findings()
    active = [f for f in findings if f.get("status", "started") != "cleared"]
    cleared = [f for f in findings if f.get("status") == "cleared"]
    if not findings:
        st.success("No findings. When the training diagnostics notice a problem (for example a discriminator "
                   "that wins too easily, or collapsing samples) it is explained here with a suggested fix.",
                   icon=":material/verified:")
        return
    if not active:
        st.success("No current problems: everything reported earlier has cleared.", icon=":material/verified:")
    running = info.state in ACTIVE_STATES
    for f in active:
        kind_name = str(f.get("kind", "finding"))
        kind, icon = SEVERITY.get(f.get("severity", "info"), SEVERITY["info"])
        title = kind_name.replace("_", " ").replace("-", " ").capitalize()
        since = _since(f)
        with st.container(border=True):
            body = f"**{state.esc(title)}**" + (f" (since step {since:,})" if since is not None else "")
            if f.get("status") == "escalated":
                at = f.get("step")
                body += f" · :red-badge[:material/trending_up: escalated to {state.esc(f.get('severity', '?'))}" + (
                    f" at step {at:,}]" if isinstance(at, int) else "]")
            if f.get("explanation"):
                body += f"  \n{f['explanation']}"
            getattr(st, kind)(body, icon=icon)
            if f.get("suggestion"):
                st.markdown(f":material/lightbulb: **Try:** {f['suggestion']}")
            evid = f.get("evidence")
            if isinstance(evid, dict) and evid:
                st.caption(" · ".join(f"{k}: {state.fmt_num(v) if isinstance(v, (int, float)) else v}"
                                      for k, v in evid.items()))
            fix = f.get("fix")
            if isinstance(fix, dict) and fix and info.config and not running:
                st.caption("Suggested change: " + _fix_text(fix))
                actions.fork_popover(info, key=f"fix_{kind_name}", fix=fix, label="Fork with this fix",
                                     on_monitor=True)
            elif isinstance(fix, dict) and fix:
                st.caption("Suggested change: " + _fix_text(fix) + " — stop the run, then fork it with this fix.")
    if cleared:
        with st.expander(f"Resolved ({len(cleared)})", icon=":material/check_circle:"):
            for f in cleared:
                since, at = _since(f), f.get("step")
                st.markdown(f"- :green-badge[resolved] **{state.esc(str(f.get('kind', 'finding')).replace('_', ' '))}**"
                            + (f" — reported at step {since:,}" if since is not None else "")
                            + (f", cleared at step {at:,}" if isinstance(at, int) else ""))


def _metric_text(e: dict) -> str:
    if e.get("type") != "metric" or not isinstance(e.get("value"), (int, float)):
        return ""
    name = "SWD (no downloaded weights)" if e.get("metric") == "swd" else str(e.get("metric", "")).upper()
    return f"{name} = {state.fmt_num(e['value'])}" + (" — new best, kept as checkpoints/best.pt" if e.get("best") else "")


CHECKPOINT_REASONS = {"periodic": "every checkpoint_every steps", "requested": "asked for from the studio",
                      "final": "end of this session"}


def _file_text(e: dict) -> str:
    """What a checkpoint / sample event wrote, for the log's message column."""
    path = e.get("path")
    if not isinstance(path, str) or e.get("type") not in ("checkpoint", "sample"):
        return ""
    reason = CHECKPOINT_REASONS.get(e.get("reason"), e.get("reason"))
    return f"Saved {path}" + (f" ({reason})" if reason else "")


def event_log(run_dir: str) -> None:
    evs = state.histories().events(run_dir).events()
    if not evs:
        st.caption("No events yet.")
        return
    rows = []
    for e in reversed(evs[-300:]):
        t = e.get("time")
        rows.append({"time": time.strftime("%H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "",
                     "step": e.get("step"), "type": e.get("type"),
                     "message": e.get("message") or e.get("explanation") or _metric_text(e) or _file_text(e)
                     or e.get("state") or ""})
    long_text_table(rows, "mon_events_wrap", 320, {"message": st.column_config.TextColumn(width="large")})


def main() -> None:
    st.title("Monitor")
    state.show_flash()
    runs = list_runs(state.runs_dir())
    if not runs:
        state.no_runs_notice()
        return
    if K_LIVE not in st.session_state:
        st.session_state[K_LIVE] = True
    info = pick_run(runs)
    if info is None:
        return
    active = info.state in ACTIVE_STATES
    every = state.REFRESH_S if active else None
    with st.container(border=True):
        st.fragment(run_every=every)(header)(str(info.path), info.state)
    live = st.session_state.get(K_LIVE, True)
    keyboard_shortcuts()
    st.caption(SHORTCUTS_CAPTION)
    st.fragment(run_every=state.CHART_REFRESH_S if active and live else None)(live_body)(str(info.path), str(info.config.get("loss", "bce")))


main()
