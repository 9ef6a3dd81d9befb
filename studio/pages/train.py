"""Train page: a preset, every TrainConfig field with its help text, an estimate, and Start."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import streamlit as st  # noqa: E402

from core.config import (  # noqa: E402
    DIFFAUG_POLICIES, FIELD_CHOICES, FIELD_GROUP, FIELD_HELP, FIELD_NAMES, PRESET_HELP, PRESETS, ConfigError,
    TrainConfig,
)
from studio import state  # noqa: E402

K_CFG = "gs_cfg"              # persisted field values (survive page switches)
K_PRESET = "gs_preset"
K_APPLIED = "gs_cfg_applied"  # (dataset, resolution) last copied from the Data page
W = "cfg_"                    # widget key prefix
K_GPUS = "train_gpus"         # widget: GPUs to use (torchrun processes on CUDA)
K_CPU_PROCS = "train_cpu_procs"  # widget: CPU processes (torchrun, gloo)
P_GPUS, P_CPU_PROCS = "gs_gpus", "gs_cpu_procs"  # their persisted values (widget state is dropped off-page)
MAX_CPU_PROCS = 16
GROUPS = [("data", "Data", ":material/photo_library:"), ("model", "Model", ":material/hub:"),
          ("optim", "Optimisation", ":material/tune:"), ("tricks", "Stabilisation tricks", ":material/balance:"),
          ("schedule", "Schedule", ":material/schedule:"), ("device", "Device & precision", ":material/memory:")]
OPEN_GROUPS = ("data", "model", "optim", "schedule")
LABELS = {
    "data": "Dataset", "resolution": "Resolution", "channels": "Channels", "arch": "Architecture", "loss": "Loss",
    "latent_dim": "Latent size (z)", "g_width": "Generator width", "d_width": "Discriminator width",
    "conditional": "Class-conditional", "d_norm": "D normalisation", "batch_size": "Batch size",
    "lr_g": "G learning rate", "lr_d": "D learning rate", "beta1": "Adam β1",
    "beta2": "Adam β2", "n_critic": "D steps per G step", "gp_weight": "Gradient-penalty weight",
    "gp_one_sided": "One-sided penalty", "clip_value": "Weight clip (wgan)", "r1_weight": "R1 penalty",
    "label_smoothing": "Label smoothing", "instance_noise": "Instance noise", "spectral_norm": "Spectral norm in D",
    "minibatch_std": "Minibatch std-dev", "ema": "EMA of G", "diffaug": "DiffAugment",
    "feature_matching": "Feature matching", "g_saturating": "Saturating G loss", "steps": "Steps",
    "minutes": "Time budget (min)", "sample_every": "Sample every", "checkpoint_every": "Checkpoint every",
    "log_every": "Log metrics every", "keep_checkpoints": "Checkpoints kept", "device": "Device",
    "precision": "Precision", "threads": "CPU threads", "compile": "torch.compile", "seed": "Seed",
    "name": "Run name",
}
FLOAT_STEP = {"lr_g": 1e-5, "lr_d": 1e-5, "beta1": 0.05, "beta2": 0.001, "ema": 0.001, "gp_weight": 1.0,
              "clip_value": 0.005, "r1_weight": 0.1, "label_smoothing": 0.05, "instance_noise": 0.05,
              "feature_matching": 0.1, "minutes": 5.0}
RESOLUTIONS = [16, 32, 64, 128, 256]
CHANNELS = {0: "auto (from the data)", 1: "1 — greyscale", 3: "3 — RGB"}
DEFAULTS = TrainConfig().to_dict()
# Fields a preset should not overwrite (they describe the user's data and machine, not the recipe).
KEEP_ON_PRESET = ("data", "channels", "device", "threads", "name", "seed", "steps", "minutes")


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def preset_values(name: str) -> dict[str, Any]:
    return {**DEFAULTS, **PRESETS.get(name, {})}


def set_fields(values: dict[str, Any]) -> None:
    """Write values both to the persisted store and the widgets (before the widgets render)."""
    cfg = st.session_state[K_CFG]
    for k, v in values.items():
        cfg[k] = v
        st.session_state[W + k] = v if k != "diffaug" else _policies(v)


def _policies(s: str) -> list[str]:
    return [p.strip() for p in str(s).split(",") if p.strip()]


def on_preset() -> None:
    name = st.session_state[W + "preset"]
    st.session_state[K_PRESET] = name
    cur = st.session_state[K_CFG]
    vals = preset_values(name)
    set_fields({k: v for k, v in vals.items() if k not in KEEP_ON_PRESET or k not in cur})


def init_state() -> None:
    ss = st.session_state
    if K_CFG not in ss:
        ss[K_CFG] = dict(DEFAULTS)
        ss[K_PRESET] = "default"
    dataset = ss.get(state.K_DATASET)
    res = ss.get("gs_resolution")
    applied = ss.get(K_APPLIED)
    if dataset and (dataset, res) != applied:  # the Data page picked something new: pre-fill it
        ss[K_APPLIED] = (dataset, res)
        upd = {"data": dataset}
        if res:
            upd["resolution"] = int(res)
        for k, v in upd.items():
            ss[K_CFG][k] = v
            ss[W + k] = v
    for k in FIELD_NAMES:
        if W + k not in ss:
            v = ss[K_CFG].get(k, DEFAULTS[k])
            ss[W + k] = _policies(v) if k == "diffaug" else v
    if W + "preset" not in ss:
        ss[W + "preset"] = ss[K_PRESET]


def device_options(current: str) -> list[str]:
    import torch

    opts = ["auto", "cpu"]
    if torch.cuda.is_available():
        opts.append("cuda")
        if torch.cuda.device_count() > 1:
            opts += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        opts.append("mps")
    if current not in opts:
        opts.append(current)
    return opts


def field_widget(name: str, values: dict[str, Any], bad: str | None) -> Any:
    """One widget for one TrainConfig field, with the field's help text."""
    key, lab = W + name, label(name)
    help_ = f"{FIELD_HELP[name]}  \n\n`{name}`"
    if name == bad:
        lab = f":red[{lab}]"
    loss = values.get("loss", st.session_state.get(W + "loss"))
    disabled = ((name in ("gp_weight", "gp_one_sided") and loss != "wgan-gp")
                or (name == "clip_value" and loss != "wgan")
                or (name in ("label_smoothing", "g_saturating") and loss != "bce"))
    if disabled:
        help_ += "  \n\n*Not used with the chosen loss.*"
    t = type(DEFAULTS[name])
    if name == "resolution":
        return st.selectbox(lab, RESOLUTIONS, key=key, help=help_, format_func=lambda r: f"{r} × {r}")
    if name == "channels":
        return st.selectbox(lab, list(CHANNELS), key=key, help=help_, format_func=CHANNELS.get)
    if name == "device":
        return st.selectbox(lab, device_options(st.session_state[key]), key=key, help=help_)
    if name == "diffaug":
        return ",".join(st.multiselect(lab, list(DIFFAUG_POLICIES), key=key, help=help_, placeholder="off"))
    if name in FIELD_CHOICES:
        opts = list(FIELD_CHOICES[name])
        if st.session_state[key] not in opts:
            opts.append(st.session_state[key])
        return st.selectbox(lab, opts, key=key, help=help_)
    if t is bool:
        return st.toggle(lab, key=key, help=help_, disabled=disabled)
    if t is int:
        return st.number_input(lab, key=key, help=help_, step=1, format="%d")
    if t is float:
        return st.number_input(lab, key=key, help=help_, step=FLOAT_STEP.get(name, 0.01), format="%g",
                               disabled=disabled)
    if name == "data":
        return st.text_input(lab, key=key, help=help_ + "  \n\nChoose and check it on the Data page.")
    return st.text_input(lab, key=key, help=help_)


def config_form(bad: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    by_group: dict[str, list[str]] = {}
    for f in FIELD_NAMES:
        by_group.setdefault(FIELD_GROUP[f], []).append(f)
    for group, title, icon in GROUPS:
        names = by_group.get(group, [])
        if not names:
            continue
        opened = group in OPEN_GROUPS or (bad in names)
        with st.expander(title, expanded=opened, icon=icon):
            ncols = 3
            for i in range(0, len(names), ncols):
                cols = st.columns(ncols)
                for col, name in zip(cols, names[i:i + ncols]):
                    with col:
                        values[name] = field_widget(name, values, bad)
            if group == "device":
                cpu_processes_widget(values.get("device", "auto"))
    return values


# ------------------------------------------------------------------ several processes (torchrun, DDP)
def resolved_device(choice: str) -> str | None:
    from core.train.device import pick_device

    try:
        return str(pick_device(choice))
    except (ConfigError, RuntimeError, ValueError):
        return None


def gpu_count() -> int:
    import torch

    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return 0


def _persisted_widget(key: str, persist: str, default: int, hi: int) -> None:
    ss = st.session_state
    if key not in ss:
        ss[key] = min(hi, max(1, int(ss.get(persist, default))))


def cpu_processes_widget(device_choice: str) -> None:
    """Inside the device expander: several gloo processes on a CPU (to try DDP without GPUs)."""
    if resolved_device(device_choice) != "cpu":
        return
    _persisted_widget(K_CPU_PROCS, P_CPU_PROCS, 1, MAX_CPU_PROCS)
    n = st.number_input(
        "Advanced: CPU processes (DDP, gloo)", min_value=1, max_value=MAX_CPU_PROCS, step=1, key=K_CPU_PROCS,
        help="1 trains in this server, in a background thread. More than 1 launches `torchrun --nproc-per-node N` "
             "as a separate process group: PyTorch DDP over the gloo backend, each process training on its own "
             "shard of the data. Batch size is per process, so the global batch is batch size × N. Useful to try "
             "multi-process training on a CPU; on a small CPU it is not faster. Pause and Stop work the same "
             "(through the run folder's control.json).")
    st.session_state[P_CPU_PROCS] = int(n)


def gpus_widget(device: str | None, device_choice: str, batch_size: int) -> int:
    """"GPUs to use" when CUDA is there and the run goes to it (not to one named GPU); returns the count."""
    count = gpu_count()
    if count < 1 or device is None or not device.startswith("cuda"):
        return 1
    if device_choice.startswith("cuda:"):
        st.caption(f"Training on `{device_choice}` only. Choose device `cuda` or `auto` to use several GPUs.")
        return 1
    _persisted_widget(K_GPUS, P_GPUS, 1, count)
    n = st.number_input(
        "GPUs to use", min_value=1, max_value=count, step=1, key=K_GPUS, disabled=count == 1,
        help=f"This machine has {count} GPU{'s' if count > 1 else ''}. 1 trains in this server, in a background "
             "thread. More than 1 launches `torchrun --nproc-per-node N`: one process per GPU with PyTorch DDP "
             "(nccl). Batch size is per GPU, so the global batch is batch size × GPUs "
             f"(now {batch_size} × N). Pause and Stop work the same (through the run folder's control.json).")
    st.session_state[P_GPUS] = int(n)
    return int(n)


def chosen_processes(device: str | None) -> int:
    if device == "cpu":
        return int(st.session_state.get(P_CPU_PROCS, 1))
    return 1


@st.cache_data(show_spinner=False, max_entries=64)
def cached_estimate(cfg_json: str, channels: int, num_classes: int, count: int | None, measure: bool):
    from core.estimate import estimate
    from core.train.device import choose_threads

    cfg = TrainConfig.from_dict(json.loads(cfg_json))
    return estimate(cfg, channels=channels, num_classes=num_classes, measure=measure, image_count=count,
                    threads=choose_threads(cfg, shared_cpu=True))


def estimate_panel(cfg: TrainConfig, busy: bool) -> None:
    from core.estimate import human_bytes, human_count, human_duration

    info = st.session_state.get(state.K_DATASET_INFO) or {}
    same = st.session_state.get(state.K_DATASET) == cfg.data
    channels = cfg.channels or (info.get("channels") if same else 0) or (1 if cfg.data in ("mnist", "fashion-mnist") else 3)
    classes = (info.get("num_classes") if same else 0) or (4 if cfg.data == "shapes" else 10 if cfg.data in (
        "mnist", "fashion-mnist", "cifar10") else 0)
    count = info.get("count") if same else None
    try:
        with st.spinner("Estimating cost…"):
            est = cached_estimate(cfg.to_json(), int(channels), int(classes), count, not busy)
    except ConfigError as e:
        state.show_error(f"{label(e.field)}: {str(e).split(': ', 1)[-1]}")
        return
    except Exception as e:  # noqa: BLE001 - the estimate is advisory; never block Start on it
        st.caption(f"No estimate for this config ({type(e).__name__}: {e}).")
        return
    per = est.sec_per_step or 0.0
    c1, c2 = st.columns(2)
    c1.metric("Time per step", human_duration(per), help=f"{est.sec_source} on {est.device}. "
              + " ".join(est.notes))
    total = per * cfg.steps
    if cfg.minutes:
        total = min(total, cfg.minutes * 60)
    c2.metric("Whole run", human_duration(total), help=f"{cfg.steps:,} steps"
              + (f", capped by the {cfg.minutes:g}-minute budget" if cfg.minutes else ""))
    c3, c4 = st.columns(2)
    c3.metric("Memory", human_bytes(est.memory_bytes),
              help=f"Weights, gradients and Adam state {human_bytes(est.weights_bytes)} + activations at batch "
                   f"{cfg.batch_size} {human_bytes(est.activations_bytes)} on {est.device}"
                   + (f"; the decoded dataset needs {human_bytes(est.dataset_bytes)} of RAM" if est.dataset_bytes else ""))
    c4.metric("Images / s", f"{cfg.batch_size / per:,.0f}" if per else "—",
              help="Real images the discriminator sees per second.")
    st.caption(f"G {human_count(est.params_g)} params · D {human_count(est.params_d)} params · "
               f"{human_count(est.flops_per_step)} FLOP per step · {est.sec_source} on `{est.device}`")
    if est.device == "cpu" and total > 30 * 60:
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

    bad_field = st.session_state.get("gs_bad_field")
    left, right = st.columns([5, 3], gap="large")
    with left:
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
        with st.container(border=True):
            st.markdown("##### Estimate")
            if cfg is not None:
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
