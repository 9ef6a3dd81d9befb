"""Runs page: every run folder under the runs root, with actions, and an overlay to compare runs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.run_logs import checkpoint_problems, metrics_problems
from core.run_notes import matches, read_notes
from core.runs import ACTIVE_STATES, RunInfo, list_runs
from studio import actions, state
from studio.compare import compare
from studio.run_notes_view import notes
from studio.translate_evaluate import NAMES as TRANSLATION_NAMES
from studio.translate_evaluate import translation_evaluate_popover

PAGE_SIZE = 25
LAST = (("loss/d", "D loss"), ("loss/g", "G loss"), ("d/real", "D(x)"), ("d/fake", "D(G(z))"))
EVAL_DEFAULT_N = 512
EVAL_OPTIONS = {  # metric -> label in the Evaluate popover
    "swd": "SWD — sliced Wasserstein distance (no downloaded weights)",
    "fid": "FID (needs the Inception-v3 weights)",
    "kid": "KID (needs the Inception-v3 weights)",
    "is": "Inception Score (needs the Inception-v3 weights)",
    "pr": "Precision / recall (needs the Inception-v3 weights)",
    "ppl": "PPL — perceptual path length (in w for stylegan2; pixel stand-in for LPIPS)",
}
EVAL_NAMES = {"swd": "SWD (no downloaded weights)", "fid": "FID", "kid": "KID", "is": "Inception Score",
              "precision": "Precision", "recall": "Recall", "pr": "Precision / recall",
              "ppl_z": "PPL in z", "ppl_w": "PPL in w"}
EVAL_NAMES.update(TRANSLATION_NAMES)  # pix2pix / cyclegan rows
K_EVAL = "runs_eval_result"  # {run path: last evaluate() result} for this browser tab
K_EVAL_GEN = "runs_eval_popover"  # {run path: n}: the Evaluate popover's key, bumped to close it


def std_text(v: object) -> str:
    """'± 0.012', or '—' where a metric has no std (never 'None')."""
    return f"± {state.fmt_num(v)}" if isinstance(v, (int, float)) and v == v else "—"


def _checkpoints(info: RunInfo) -> list[Path]:
    try:
        return sorted(p for p in (info.path / "checkpoints").iterdir() if p.suffix == ".pt")
    except OSError:
        return []


def evaluate_popover(info: RunInfo, key: str) -> None:
    """Score a checkpoint: core.metrics.evaluate, then core.metrics.record into evaluations.jsonl."""
    ckpts = _checkpoints(info)
    if not ckpts or not info.config:
        st.button("Evaluate", key=f"{key}_dis", icon=":material/analytics:", width="stretch", disabled=True,
                  help="Needs a checkpoint (and config.json) to generate images from.")
        return
    if info.config.get("task", "generate") != "generate":  # pix2pix / cyclegan: held-out pixel scores
        return translation_evaluate_popover(info, key, lambda r: st.session_state.setdefault(K_EVAL, {}).__setitem__(
            str(info.path), r))
    gen = st.session_state.get(K_EVAL_GEN, {}).get(str(info.path), 0)  # a new key = a closed popover
    with st.popover("Evaluate", icon=":material/analytics:", width="stretch", key=f"{key}_pop{gen}",
                    help="Score the generator's sample quality: N generated images against N real ones."):
        metrics = st.multiselect("Metrics", list(EVAL_OPTIONS), default=["swd"], key=f"{key}_metrics",
                                 format_func=EVAL_OPTIONS.get,
                                 help="SWD needs no downloaded network and always works. FID, KID, Inception Score "
                                      "and precision/recall need the standard Inception-v3 weights (never "
                                      "downloaded here); without them they are skipped and the reason is shown.")
        n = st.number_input("Images", min_value=16, max_value=50_000, value=EVAL_DEFAULT_N, step=256,
                            key=f"{key}_n", help="Generated images (and as many real ones). More is steadier but "
                                                 "slower; papers use 50,000 for FID.")
        has_best = (info.path / "checkpoints" / "best.pt").exists()
        which = st.selectbox("Checkpoint", ["latest", "best"] if has_best else ["latest"], key=f"{key}_ckpt",
                             help="latest: the newest valid checkpoint. best: checkpoints/best.pt, kept by the "
                                  "quality score during training.")
        import torch

        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        device = st.selectbox("Device", devices, key=f"{key}_device",
                              help="Where to run the generator and the metric. A GPU is much faster for FID/KID.")
        job = state.active_job()
        same_device = job is not None and str(job.device).split(":")[0] == device
        refuse = same_device and device != "cpu"
        if refuse:
            st.warning(f"{device} is training {state.esc(Path(job.run_dir).name)}: evaluate on the CPU, or wait "
                       "until it finishes (both would compete for GPU memory).", icon=":material/block:")
        elif same_device:
            st.warning("A run is training on this machine: evaluating on the CPU now slows that training down "
                       "while it runs.", icon=":material/speed:")
        if st.button("Run evaluation", type="primary", key=f"{key}_go", width="stretch",
                     disabled=refuse or not metrics, help="Generate the images, score them, and add the result "
                                                          "to this run's evaluations.jsonl."):
            from core.metrics import evaluate, record

            ck = str(info.path / "checkpoints" / "best.pt") if which == "best" else None
            try:
                with st.spinner(f"Evaluating {int(n):,} generated vs {int(n):,} real images on {device}…"):
                    res = evaluate(info.path, n=int(n), metrics=",".join(metrics), device=device, checkpoint=ck)
                    record(info.path, res)
            except Exception as e:  # noqa: BLE001 - CheckpointError, DataError, ValueError, OOM: say it, no traceback
                state.show_error(e, prefix="Evaluation failed: ")
                return
            st.session_state.setdefault(K_EVAL, {})[str(info.path)] = res
            st.session_state.setdefault(K_EVAL_GEN, {})[str(info.path)] = gen + 1  # closes over its result
            st.toast("Evaluation recorded", icon=":material/check:")
            st.rerun()


def evaluation_panel(info: RunInfo) -> None:
    """The last evaluation's outcome (incl. metrics that could not be computed) and the run's table."""
    res = st.session_state.get(K_EVAL, {}).get(str(info.path))
    if res:
        got = " · ".join(f"{EVAL_NAMES.get(r['metric'], r['metric'])} **{state.fmt_num(r['value'])}**"
                         + (f" ± {state.fmt_num(r['std'])}" if isinstance(r.get("std"), (int, float)) else "")
                         for r in res.get("results", []))
        step = res.get("step")
        secs = sum(v for v in (res.get("seconds") or {}).values() if isinstance(v, (int, float)))
        if got:
            st.success(f"Evaluated step {step:,} on {res.get('n', 0):,} images in {secs:.1f} s: {got}"
                       if isinstance(step, int) else f"Evaluated: {got}", icon=":material/analytics:")
        for m, why in (res.get("unavailable") or {}).items():
            st.warning(f"**{EVAL_NAMES.get(m, m)} not computed.** " + state.esc(why).replace("\n", "  \n"),
                       icon=":material/cloud_off:")
    if not (info.path / "evaluations.jsonl").exists():
        return
    from core.metrics import read_evaluations

    rows = read_evaluations(info.path)
    if not rows:
        return
    table = pd.DataFrame([{
        "when": state.fmt_ago(r.get("time")), "step": r.get("step"),
        "metric": EVAL_NAMES.get(str(r.get("metric")), r.get("metric")), "value": r.get("value"),
        "± std": std_text(r.get("std")), "images": r.get("n"), "feature network": r.get("feature_net"),
        "checkpoint": r.get("checkpoint")} for r in reversed(rows)])
    with st.expander(f"Evaluations ({len(rows)})", icon=":material/analytics:", expanded=bool(res)):
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"value": st.column_config.NumberColumn(format="%.4g", help="Lower is better "
                                    "for SWD, FID and KID; higher for Inception Score, precision and recall.")})


def run_card(info: RunInfo, idx: str) -> None:
    h = state.histories().metrics(info.path)
    active = actions.is_active(info)
    cfg = info.config
    with st.container(border=True):
        thumb, body, nums, acts = st.columns([1, 3, 1.5, 3], gap="medium", vertical_alignment="center")
        with thumb:
            latest = info.latest_sample()
            data = state.png_file(latest, min_width=160) if latest else None
            if data:
                st.image(data, output_format="PNG", width="stretch")
            else:
                st.markdown("<div style='height:96px;border-radius:8px;background:rgba(128,128,128,.12);"
                            "display:flex;align-items:center;justify-content:center;color:#888;"
                            "font-size:.8rem'>no samples yet</div>", unsafe_allow_html=True)
        with body:
            st.markdown(f"**{state.esc(info.name)}** {state.state_label(info.state)}")
            if cfg:
                bits = [cfg.get("arch"), cfg.get("loss"), state.dataset_label(cfg, info.meta),
                        f"{cfg.get('resolution')}px" if cfg.get("resolution") else None]
                bits.append(state.ddp_label(info.meta))
                fork = info.meta.get("forked_from")
                if isinstance(fork, dict) and fork.get("run"):
                    bits.append(f"forked from {fork['run']}")
                st.caption(" · ".join(state.esc(b) for b in bits if b) + f" · created {state.fmt_ago(info.meta.get('created'))}")
            frac, budget = state.run_progress(info)
            st.progress(frac, text=f"step {info.step:,}" + (f" / {budget}" if budget else ""))
            notes(info, idx)
        with nums:
            vals = [(lab, h.last(k)) for k, lab in LAST]
            vals = [(lab, v) for lab, v in vals if v is not None]
            if vals:
                st.markdown("  \n".join(f"<small>{lab}</small> **{state.fmt_num(v)}**" for lab, v in vals),
                            unsafe_allow_html=True)
            else:
                st.caption("no metrics yet")
        with acts:
            a1, a2 = st.columns(2)
            if a1.button("Open", key=f"open_{idx}", icon=":material/monitoring:", width="stretch",
                         help="Show this run on the Monitor page."):
                state.go("monitor", run=info.path)
            with a2:
                if info.config and not active:
                    actions.resume_popover(info, key=f"res_{idx}")
                else:
                    st.button("Resume", key=f"resdis_{idx}", icon=":material/play_arrow:", width="stretch",
                              disabled=True, help="Running now." if active else "No config.json: cannot resume.")
            a3, a4 = st.columns(2)
            with a3:
                if info.config and not active:
                    actions.fork_popover(info, key=f"fork_{idx}")
                else:
                    st.button("Fork", key=f"forkdis_{idx}", icon=":material/call_split:", width="stretch",
                              disabled=True, help="Stop the run first." if active else "No config.json: cannot fork.")
            with a4:
                actions.delete_popover(info, key=f"del_{idx}")
            a5, a6 = st.columns(2)
            with a5:
                evaluate_popover(info, key=f"eval_{idx}")
            if a6.button("Start from", key=f"xfer_{idx}", icon=":material/move_up:", width="stretch",
                         disabled=not info.config or info.step == 0,
                         help="Transfer learning: a new run, on any data, that starts from this run's weights "
                              "instead of random ones (fewer images needed)."):
                actions.start_from_run(info)
        evaluation_panel(info)
        problems = list(info.problems) + checkpoint_problems(info.path) + metrics_problems(
            h, info.name, active=info.state in ACTIVE_STATES)
        for p in problems:
            st.warning(p, icon=":material/broken_image:")
        if info.state in ("failed", "diverged"):
            err = state.histories().events(info.path).last_error()
            if err and err.get("message"):
                st.error(f"{info.state.capitalize()}: {err['message']}", icon=":material/error:")


def isolated_card(info: RunInfo) -> None:
    """One run's card; if drawing it fails, an error card naming its folder (with Delete) takes its place,
    so one damaged run never hides the runs below it nor blocks its own deletion."""
    slot = st.empty()
    try:
        with slot.container():
            run_card(info, info.name)
    except Exception as e:  # noqa: BLE001 - whatever a damaged folder provokes, the page goes on
        slot.empty()
        with slot.container(border=True):
            st.error(f"**{state.esc(info.name)}** cannot be shown: {state.esc(str(e) or type(e).__name__)}",
                     icon=":material/broken_image:")
            st.caption(f"Folder: `{info.path}`")
            actions.delete_popover(info, key=f"delbroken_{info.name}")


def main() -> None:
    st.title("Runs")
    st.caption(f"Every run under `{state.runs_dir()}` — started here, from the command line, or by another "
               "process still writing to it. Newest first.")
    state.show_flash()
    runs = list_runs(state.runs_dir())
    if not runs:
        state.no_runs_notice()
        return
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    query = c1.text_input("Filter", placeholder="name, architecture, dataset, tag, note…", key="runs_filter",
                          label_visibility="collapsed")
    states = sorted({r.state for r in runs})
    chosen_states = c2.multiselect("State", states, key="runs_states", placeholder="all states",
                                   label_visibility="collapsed")
    if c3.button("Refresh", icon=":material/refresh:", width="stretch"):
        st.rerun()
    shown = runs
    if query.strip():
        q = query.strip().lower()
        shown = [r for r in shown if q in r.name.lower() or q in str(r.config.get("arch", "")).lower()
                 or q in str(r.config.get("data", "")).lower() or q in str(r.config.get("loss", "")).lower()
                 or matches(read_notes(r.path), q)]
    if chosen_states:
        shown = [r for r in shown if r.state in chosen_states]
    n_act = sum(r.state in ACTIVE_STATES for r in runs)
    st.caption(f"{len(runs)} run{'s' if len(runs) != 1 else ''}" + (f" · {n_act} active" if n_act else "")
               + (f" · {len(shown)} shown" if len(shown) != len(runs) else ""))
    limit = st.session_state.get("runs_limit", PAGE_SIZE)
    for info in shown[:limit]:
        isolated_card(info)
    if len(shown) > limit:
        if st.button(f"Show {min(PAGE_SIZE, len(shown) - limit)} more", key="more"):
            st.session_state["runs_limit"] = limit + PAGE_SIZE
            st.rerun()
    compare(runs)


main()
