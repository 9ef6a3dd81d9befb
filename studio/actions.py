"""Run actions shared by the Monitor and Runs pages: control, resume, fork, delete."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from core.config import DIFFAUG_POLICIES, FIELD_HELP, RESUME_LOCKED, ConfigError, TrainConfig
from core.runs import ACTIVE_STATES, RunError, RunInfo, delete_run, lock_holder, write_control
from studio import state

# Fields offered when forking: the recipe, not the network shapes (those need a fresh run).
FORK_FIELDS = ("steps", "lr_g", "lr_d", "n_critic", "batch_size", "r1_weight", "instance_noise", "label_smoothing",
               "ema", "diffaug")
RESUMABLE = ("finished", "stopped", "interrupted", "failed", "diverged")


def _err_text(e: BaseException) -> str:
    if isinstance(e, ConfigError):
        return f"`{e.field}`: {str(e).split(': ', 1)[-1]}"
    return str(e) or type(e).__name__


def control(run_dir: Path, action: str) -> None:
    """Pause / resume / stop / checkpoint any run: this server's job or a CLI process (control.json)."""
    try:
        jm = state.job_manager()
    except Exception:  # noqa: BLE001 - core.jobs unavailable: the control file still works
        jm = None
    try:
        if action == "pause":
            jm.pause(run_dir) if jm else write_control(run_dir, state="paused")
        elif action == "resume":
            jm.unpause(run_dir) if jm else write_control(run_dir, state="running")
        elif action == "stop":
            jm.stop(run_dir) if jm else write_control(run_dir, state="stopped")
        elif action == "checkpoint":
            jm.checkpoint_now(run_dir) if jm else write_control(run_dir, checkpoint=True)
    except (OSError, ValueError) as e:
        state.show_error(e, prefix=f"Could not {action}: ")
        return
    st.toast({"pause": "Pause requested", "resume": "Resume requested", "stop": "Stop requested — the run "
              "saves a checkpoint and stops", "checkpoint": "Checkpoint requested"}[action],
             icon=":material/check:")


def is_active(info: RunInfo) -> bool:
    if info.state in ACTIVE_STATES:
        return True
    job = state.active_job()
    if job is not None and state.same_run(job.run_dir, info.path):
        return True
    return lock_holder(info) is not None  # a resume still loading its data: its status still says it ended


def _open(run_dir: Path, message: str, on_monitor: bool = False) -> None:
    """Show ``run_dir`` on the Monitor. From inside the Monitor's live fragments, rerun the app
    rather than st.switch_page: switching pages from a fragment leaves the new page's live
    fragments without their refresh timers."""
    st.session_state[state.K_MONITOR_RUN] = str(run_dir)
    state.flash(message)
    if on_monitor:
        st.query_params["run"] = Path(run_dir).name
        st.rerun(scope="app")
    state.go("monitor", run=run_dir)


def resume_popover(info: RunInfo, key: str, width: str = "stretch", on_monitor: bool = False) -> None:
    if not info.config:
        return
    disabled = is_active(info) or info.state not in RESUMABLE
    with st.popover("Resume", icon=":material/play_arrow:", disabled=disabled, width=width,
                    help="Continue training this run in its own folder from its latest checkpoint."):
        total = info.total_steps or int(info.config.get("steps") or 0)
        default = total if info.step < total else max(total * 2, info.step + 1)
        steps = st.number_input("Train until step", min_value=1, value=int(default), step=100, key=f"{key}_steps",
                                help="New total number of steps. A finished run needs a larger number.")
        minutes = None
        budget = float(info.config.get("minutes") or 0)
        if budget > 0:  # a time-budgeted run: its budget is a total too, and may be what ended it
            used = float(info.status.get("elapsed_s") or 0) / 60
            minutes = st.number_input(
                "Train until minute", min_value=0.0, step=1.0, key=f"{key}_minutes",
                value=float(budget if used < budget else max(round(used * 2), 1)),
                help=f"New total training time in minutes, counting the {used:.1f} min trained so far "
                     "(0 = no time limit). Training stops at whichever of steps / minutes comes first.")
        if st.button("Resume training", type="primary", key=f"{key}_go", width="stretch"):
            try:
                run_dir = state.job_manager().resume(info.path, steps=int(steps), minutes=minutes)
            except Exception as e:  # noqa: BLE001 - JobBusy, ConfigError, RunError, CheckpointError, DataError
                state.show_error(_err_text(e), prefix="Could not resume: ")
                return
            _open(Path(run_dir), f"Resumed **{state.esc(info.name)}**.", on_monitor)


def fork_popover(info: RunInfo, key: str, fix: dict[str, Any] | None = None, label: str = "Fork",
                 width: str = "stretch", on_monitor: bool = False) -> None:
    if not info.config:
        return
    try:
        cfg = TrainConfig.from_dict(info.config)
    except ConfigError:
        return
    with st.popover(label, icon=":material/call_split:", width=width,
                    help="Start a new run from this run's latest checkpoint with some settings changed."):
        st.caption("A new run folder starts from this run's latest weights. Network shapes stay the same; "
                   "change the recipe here.")
        fork_note(info, cfg, fix)
        changes: dict[str, Any] = {}
        base = {**cfg.to_dict(), **(fix or {})}
        base["steps"] = max(int(base["steps"]), info.step * 2, info.step + 1)
        fields = list(FORK_FIELDS) + [k for k in (fix or {}) if k not in FORK_FIELDS and k not in RESUME_LOCKED]
        cols = st.columns(2)
        for i, name in enumerate(fields):
            with cols[i % 2]:
                new = _fork_widget(name, base[name], f"{key}_{name}", suggested=bool(fix) and name in fix)
            # A finding's fix is passed as is (unless edited here), even where it equals the current value.
            if new != getattr(cfg, name) or (fix and name in fix and new == fix[name]):
                changes[name] = new
        name = st.text_input("New run name", value="", key=f"{key}_name", placeholder=f"{info.name[6:]}-fork",
                             help=FIELD_HELP["name"])
        if name.strip():
            changes["name"] = name.strip()
        if st.button("Start fork", type="primary", key=f"{key}_go", width="stretch"):
            try:
                run_dir = state.job_manager().fork(info.path, changes)
            except Exception as e:  # noqa: BLE001
                state.show_error(_err_text(e), prefix="Could not fork: ")
                return
            _open(Path(run_dir), f"Forked **{state.esc(info.name)}** into **{state.esc(Path(run_dir).name)}**.",
                  on_monitor)


def fork_label(name: str, suggested: bool = False) -> str:
    """A fork field's label: the Train form's friendly name; a suggested fix's fields are marked."""
    from studio.train_form import label
    text = "Total steps" if name == "steps" else label(name)
    return f":orange[**{text}** · suggested]" if suggested else text


def fork_note(info: RunInfo, cfg: TrainConfig, fix: dict[str, Any] | None) -> None:
    """Say what a fork counts: steps are a total from the parent's step 0, the time budget starts fresh."""
    budget = f" of {cfg.minutes:g} min" if cfg.minutes else ""
    st.caption(f"**Total steps** counts from the parent's step 0: the fork starts at step {info.step:,} and "
               f"trains until that total. Its time budget{budget} starts fresh (only the fork's own "
               "training counts).")
    if fix:
        from studio.train_form import label
        st.caption(":orange[:material/auto_fix_high: The suggested fix changed: "
                   + ", ".join(f"**{label(k)}** → `{v}`" for k, v in fix.items()) + "]")


def _fork_widget(name: str, v: Any, k: str, suggested: bool = False) -> Any:
    lab, hlp = fork_label(name, suggested), FIELD_HELP[name]
    if name == "diffaug":  # a choice of the known policies, not free text
        chosen = st.multiselect(lab, list(DIFFAUG_POLICIES), default=[p for p in str(v).split(",") if p.strip()
                                                                     in DIFFAUG_POLICIES],
                                key=k, help=hlp, placeholder="off")
        return ",".join(p for p in DIFFAUG_POLICIES if p in chosen)
    if isinstance(v, bool):
        return st.toggle(lab, value=v, key=k, help=hlp)
    if isinstance(v, int):
        return st.number_input(lab, value=v, step=1, key=k, help=hlp)
    if isinstance(v, float):
        return st.number_input(lab, value=v, format="%g", key=k, help=hlp,
                               step=max(abs(v) / 10, 1e-5) if v else 0.01)
    return st.text_input(lab, value=str(v), key=k, help=hlp)


def delete_popover(info: RunInfo, key: str) -> None:
    active = is_active(info)
    who = lock_holder(info) if active else None
    with st.popover("Delete", icon=":material/delete:", disabled=active, width="stretch",
                    help=(f"Being trained by {who}: stop it first." if who else "Stop the run first.") if active
                    else "Delete this run folder and everything in it."):
        st.markdown(f"Delete **{state.esc(info.name)}** and all its samples and checkpoints? This cannot be undone.")
        sure = st.checkbox("Yes, delete it permanently", key=f"{key}_sure")
        if st.button("Delete run", type="primary", key=f"{key}_go", disabled=not sure, width="stretch"):
            try:
                delete_run(state.runs_dir(), info.path)
            except (RunError, OSError) as e:
                state.show_error(e, prefix="Not deleted: ")
                return
            state.histories().forget(info.path)
            if st.session_state.get(state.K_MONITOR_RUN) == str(info.path):
                st.session_state.pop(state.K_MONITOR_RUN, None)
            state.flash(f"Deleted {info.name}.")
            st.rerun()


def start_from_run(info: RunInfo) -> None:
    """Transfer learning from the Runs page: open the Train page with init_from set to this run and the
    network-shape fields it needs (the data stays the user's choice); Start then begins at step 0
    from this run's weights."""
    from core.train.transfer import WEIGHT_SHAPE_FIELDS
    from studio import ui_state
    from studio.train_form import DEFAULTS, K_CFG, W
    try:
        cfg = TrainConfig.from_dict(info.config)
    except ConfigError as e:
        state.show_error(e, prefix="Cannot start from this run: ")
        return
    ss = st.session_state
    ui_state.restore()  # a reloaded tab's saved form is the base, as the Train page would use it
    form = ss.setdefault(K_CFG, dict(DEFAULTS))
    ss.setdefault(ui_state.K_PRESET, "default")
    for k, v in {**{f: getattr(cfg, f) for f in WEIGHT_SHAPE_FIELDS}, "channels": cfg.channels,
                 "init_from": str(info.path)}.items():
        form[k] = v
        ss.pop(W + k, None)  # the Train form's widget takes the new value when it is drawn
    state.flash(f"The next run starts from the weights of **{state.esc(info.name)}** (same network sizes; pick any "
                "data of the same colour mode on the Data page). Clear *Init from* to start from random weights.",
                "info")
    state.go("train")
