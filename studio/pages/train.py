"""Train page: a preset, every TrainConfig field with its help text, an estimate, and Start."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import streamlit as st

from core.config import PRESET_HELP, PRESETS, ConfigError, TrainConfig
from studio import state

# The settings form and the process-count widgets live in their own modules; this page lays them out.
from studio.train_form import K_CFG, W, config_form, init_state, label, on_preset, preset_values
from studio.train_procs import chosen_processes, gpus_widget

K_EST_RUN = "gs_estimate_run"  # which script run of this session asked for an estimate last


@st.cache_data(show_spinner=False, max_entries=64)
def cached_estimate(cost_json: str, channels: int, num_classes: int, count: int | None, measure: bool,
                    _cancelled=None):
    """Keyed by the fields that change a step's cost: editing steps, the schedule or the name reuses it."""
    from core.estimate import estimate
    from core.train.device import choose_threads

    cfg = TrainConfig.from_dict(json.loads(cost_json))
    return estimate(cfg, channels=channels, num_classes=num_classes, measure=measure, image_count=count,
                    threads=choose_threads(cfg, shared_cpu=True), cancelled=_cancelled)


def superseded_check():
    """A callable saying whether a newer run of this page (in this session) has asked for an estimate.

    Each edit reruns the page; Streamlit starts the new run while the old one is still inside its
    estimate, so the old one gives up at its next step instead of timing against the new one."""
    ss = st.session_state
    mine = ss[K_EST_RUN] = ss.get(K_EST_RUN, 0) + 1
    return lambda: ss.get(K_EST_RUN) != mine


def estimate_panel(cfg: TrainConfig, busy: bool) -> None:
    from core.estimate import EstimateCancelled, cost_config, images_per_second, run_length
    from core.resolved import resolved_autos
    from core.units import human_bytes, human_count, human_duration

    info = st.session_state.get(state.K_DATASET_INFO) or {}
    same = st.session_state.get(state.K_DATASET) == cfg.data
    channels = cfg.channels or (info.get("channels") if same else 0) or (1 if cfg.data in ("mnist", "fashion-mnist") else 3)
    classes = (info.get("num_classes") if same else 0) or (4 if cfg.data == "shapes" else 10 if cfg.data in (
        "mnist", "fashion-mnist", "cifar10") else 0)
    count = info.get("count") if same else None
    try:
        with st.spinner("Timing a training step…"):
            est = cached_estimate(cost_config(cfg).to_json(), int(channels), int(classes), count, not busy,
                                  _cancelled=superseded_check())
    except EstimateCancelled:
        return  # a newer run of this page shows the estimate
    except ConfigError as e:
        state.show_error(f"{label(e.field)}: {str(e).split(': ', 1)[-1]}")
        return
    except Exception as e:  # noqa: BLE001 - the estimate is advisory; never block Start on it
        st.caption(f"No estimate for this config ({type(e).__name__}: {e}).")
        return
    per = est.sec_per_step or 0.0
    length = run_length(est, cfg)
    lo, mid, hi = length["seconds"]
    c1, c2 = st.columns(2)
    how = (f"A real training step of this config (on random images of its shape), timed on {est.device}: the "
           "median of the timed steps, with the fastest and slowest below it."
           if est.sec_source == "measured" else "Rough, from the FLOP count: not timed"
           + (" while a run is training." if busy else "."))
    spread = est.sec_range
    c1.metric("Time per step", human_duration(per), help=" ".join([how, *est.notes]),
              delta=f"{human_duration(spread[0])} – {human_duration(spread[1])}" if spread else None,
              delta_color="off", delta_arrow="off")
    ends = {"steps": f"ends at step {cfg.steps:,}",
            "minutes": f"ends by the {cfg.minutes:g}-minute budget, near step {length['steps']:,} of {cfg.steps:,}",
            "either": f"ends at step {cfg.steps:,} or by the {cfg.minutes:g}-minute budget, whichever comes first"}
    c2.metric("Whole run", human_duration(mid),
              delta=f"{human_duration(lo)} – {human_duration(hi)}" if hi > lo * 1.01 else None,
              delta_color="off", delta_arrow="off",
              help=f"{cfg.steps:,} steps at the timed speed; the range comes from the fastest and slowest timed "
                   "step. Sampling, checkpoints and quality evaluation add to it.")
    st.caption(f":material/flag: This run {ends[length['limit']]}.")
    c3, c4 = st.columns(2)
    c3.metric("Memory", human_bytes(est.memory_bytes),
              help=f"Weights, gradients, optimiser state and EMA {human_bytes(est.weights_bytes)} + activations at "
                   f"batch {cfg.batch_size} {human_bytes(est.activations_bytes)} on {est.device} ({est.memory_source})"
                   + (f"; the decoded dataset needs {human_bytes(est.dataset_bytes)} of RAM" if est.dataset_bytes else ""))
    memory_warning(cfg, est)
    rate = images_per_second(est, cfg)
    c4.metric("Images / s", f"{rate:,.0f}" if rate else "—",
              help="Real images the discriminator sees per second (batch × D steps per G step), as the Monitor "
                   "counts them.")
    autos = resolved_autos(cfg)
    if autos:
        st.caption(":material/auto_mode: Automatic settings here: " + " · ".join(
            f"{label(k)} → **{state.esc(v)}**" for k, v in autos.items()))
    st.caption(f"G {human_count(est.params_g)} params · D {human_count(est.params_d)} params · "
               f"{human_count(est.flops_per_step)} FLOP per step · {est.sec_source} on `{est.device}`")
    if est.device == "cpu" and mid > 30 * 60:
        st.caption(":material/lightbulb: On a CPU, resolution 32 with widths of 32 and batch 32 trains in "
                   "minutes instead of hours.")


def cli_command(cfg: TrainConfig, preset_name: str, nproc: int = 1) -> str:
    base = preset_values(preset_name)
    parts = ["python", "-m", "core", "train"] if nproc <= 1 else [
        "torchrun", "--standalone", "--nproc-per-node", str(nproc), "-m", "core", "train"]
    if preset_name != "default":
        parts += ["--preset", preset_name]
    for k, v in cfg.to_dict().items():
        if v != base.get(k):
            parts += ["--set", f"{k}={v}"]
    return " ".join(shlex.quote(p) for p in parts)


def start(cfg: TrainConfig, nproc: int = 1) -> None:
    """One process: a thread of this server (JobManager.start). Several: a torchrun DDP subprocess
    (JobManager.start_torchrun) whose run folder the Monitor shows like any other."""
    from core.data import DataError
    from core.jobs import JobBusy

    bar = st.progress(0.0, text="Loading data…") if nproc <= 1 else None

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total) if total else 1.0, text=f"Loading data… {done:,} / {total:,}")

    try:
        if nproc > 1:
            with st.spinner(f"Starting {nproc} training processes with torchrun (DDP)…"):
                run_dir = state.job_manager().start_torchrun(cfg, nproc)
        else:
            run_dir = state.job_manager().start(cfg, progress=progress)
    except JobBusy as e:
        st.warning(f"Not started: {e}", icon=":material/block:")
        return
    except ConfigError as e:
        state.show_error(f"{label(e.field)} (`{e.field}`): {str(e).split(': ', 1)[-1]}")
        return
    except (DataError, OSError, ValueError, RuntimeError) as e:
        state.show_error(e, prefix="Could not start: ")
        return
    finally:
        if bar is not None:
            bar.empty()
    how = f" with {nproc} torchrun processes (DDP)" if nproc > 1 else ""
    state.flash(f"Started **{state.esc(Path(run_dir).name)}**{how}. Training continues in the background even if "
                "you close the browser.", "success")
    state.go("monitor", run=run_dir)


def memory_warning(cfg: TrainConfig, est) -> None:  # noqa: ANN001
    """Before Start: say so when the step will not fit in free memory (Start would refuse it, naming batch_size)."""
    import torch

    from core.train.memory_check import HEADROOM, free_memory_bytes
    from core.units import human_bytes
    try:
        free = free_memory_bytes(torch.device(est.device))
    except (RuntimeError, ValueError):
        return
    if free and est.memory_bytes > HEADROOM * free:
        st.warning(f"This step needs about {human_bytes(est.memory_bytes)} but {human_bytes(free)} is free on "
                   f"{est.device}: Start will refuse it. Lower **{label('batch_size')}** or **{label('resolution')}**.",
                   icon=":material/memory:")


def _use_recommended(preset: str, overrides: dict) -> None:
    from studio.train_form import set_fields
    st.session_state[W + "preset"] = preset
    on_preset()
    set_fields(overrides)


def recommendation() -> None:
    """'Pick for me': the preset core.recommend chooses from the chosen folder's scan, and why, with a button."""
    ss = st.session_state
    scan, chosen = ss.get("gs_scan"), ss.get(state.K_DATASET)
    if not scan or not chosen or Path(str(scan.get("folder", ""))).expanduser() != Path(str(chosen)).expanduser():
        return  # a built-in dataset, or a folder scanned before this session: nothing to judge by
    import torch

    from core.recommend import recommend_for_scan
    r = recommend_for_scan(scan["report"], gpu=torch.cuda.is_available() or torch.backends.mps.is_available())
    if ss.get(W + "preset") == r.preset and all(ss[K_CFG].get(k) == v for k, v in r.overrides.items()):
        st.caption(f"Recommended for this data: **{r.preset}** (in use). {r.reason}")
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.info(f"**Recommended for this data: {r.preset}** — {r.reason}", icon=":material/lightbulb:")
    c2.button(f"Use {r.preset}", key="use_recommended", on_click=_use_recommended, args=(r.preset, r.overrides),
              width="stretch", help="Switch to this preset with the settings shown (" + r.as_cli() + ").")


def main() -> None:
    init_state()
    st.title("Train")
    st.caption("Pick a recipe, adjust anything you like (hover the ? icons to learn what each setting does and when to change it), "
               "and press Start. Training runs in the background; the Monitor page shows it live.")
    state.show_flash()

    names = list(PRESETS)
    top1, top2 = st.columns([1, 2], vertical_alignment="bottom")
    with top1:
        preset_name = st.selectbox("Preset", names, key=W + "preset", on_change=on_preset,
                                   help="A tested starting recipe. Choosing one fills in the fields below; you can "
                                        "still change any of them.")
    with top2:
        st.info(PRESET_HELP.get(preset_name, ""), icon=":material/menu_book:")

    recommendation()
    bad_field = st.session_state.get("gs_bad_field")
    left, right = st.columns([5, 3], gap="large")
    with left, st.container(key="train_form"):
        values = config_form(bad_field)
    st.session_state[K_CFG].update(values)

    cfg, error = None, None
    try:
        cfg = TrainConfig.from_dict(values).validate()
        from core.train.device import pick_device

        device = str(pick_device(cfg.device))
    except ConfigError as e:
        error, device = e, None
    new_bad = error.field if error is not None else None
    if new_bad != bad_field:
        st.session_state["gs_bad_field"] = new_bad

    with right:
        job = state.active_job()
        busy_here = False
        if job is not None and device is not None:
            try:
                busy_here = state.job_manager().active(device=device) is not None
            except TypeError:
                busy_here = True
        with st.container(border=True, key="estimate"):
            st.markdown("##### Estimate")
            if cfg is not None and error is None:
                estimate_panel(cfg, busy=job is not None)
            else:
                st.caption("Fix the setting below to see an estimate.")
        if error is not None:
            state.show_error(f"**{label(error.field)}** (`{error.field}`): {str(error).split(': ', 1)[-1]}")
        if job is not None:
            with st.container(border=True):
                procs = f" · {job.nproc} torchrun processes" if getattr(job, "proc", None) is not None else ""
                st.markdown(f"**Training now:** {state.esc(Path(job.run_dir).name)} on `{job.device}`{procs}")
                if busy_here:
                    st.caption("One run per device at a time: stop it (or let it finish) to start another here.")
                if st.button("Open in Monitor", icon=":material/monitoring:", width="stretch"):
                    state.go("monitor", run=job.run_dir)
        nproc = chosen_processes(device)
        gpus = gpus_widget(device, str(values.get("device", "auto")), int(values.get("batch_size") or 0))
        if device is not None and device.startswith("cuda"):
            nproc = gpus
        if nproc > 1 and cfg is not None:
            st.caption(f":material/lan: {nproc} processes with torchrun (DDP): global batch "
                       f"{cfg.batch_size} × {nproc} = {cfg.batch_size * nproc:,} images per step.")
        clicked = st.button("Start training", type="primary", icon=":material/play_arrow:", width="stretch",
                            disabled=cfg is None or busy_here, key="start",
                            help="Validate the settings, load the data and start training in the background"
                                 + (f" as {nproc} torchrun processes." if nproc > 1 else "."))
        if clicked and cfg is not None and not busy_here:
            start(cfg, nproc)
        if cfg is not None:
            with st.expander("Same run from the command line", icon=":material/terminal:"):
                st.code(cli_command(cfg, preset_name, nproc), language="bash", wrap_lines=True)
    if new_bad != bad_field:
        st.rerun()  # redraw so the offending field is highlighted (and un-highlighted once fixed)


main()
