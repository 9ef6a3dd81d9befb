"""Train page settings form: presets, and one widget per TrainConfig field with its help text, in groups."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.config import (
    DIFFAUG_POLICIES,
    FIELD_CHOICES,
    FIELD_GROUP,
    FIELD_HELP,
    FIELD_NAMES,
    PRESETS,
    TrainConfig,
)
from core.field_use import unused_fields
from studio import state, ui_state
from studio.train_procs import cpu_processes_widget
from studio.ui_state import K_APPLIED, K_CFG, K_PRESET

W = "cfg_"                    # widget key prefix
GROUPS = [("data", "Data", ":material/photo_library:"), ("model", "Model", ":material/hub:"),
          ("translate", "Translation", ":material/compare:"),
          ("optim", "Optimisation", ":material/tune:"), ("tricks", "Stabilisation tricks", ":material/balance:"),
          ("schedule", "Schedule", ":material/schedule:"), ("device", "Device & precision", ":material/memory:"),
          ("run", "Run name & starting weights", ":material/badge:")]
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
    "log_every": "Log metrics every", "keep_checkpoints": "Checkpoints kept", "on_diverge": "If training diverges",
    "eval_every": "Evaluate every", "eval_samples": "Images per evaluation", "eval_metric": "Quality metric",
    "device": "Device",
    "precision": "Precision", "threads": "CPU threads", "compile": "torch.compile", "seed": "Seed",
    "name": "Run name", "init_from": "Init from (transfer)",
}
FLOAT_STEP = {"lr_g": 1e-5, "lr_d": 1e-5, "beta1": 0.05, "beta2": 0.001, "ema": 0.001, "gp_weight": 1.0,
              "clip_value": 0.005, "r1_weight": 0.1, "label_smoothing": 0.05, "instance_noise": 0.05,
              "feature_matching": 0.1, "minutes": 5.0}
RESOLUTIONS = [16, 32, 64, 128, 256]
CHANNELS = {0: "auto (from the data)", 1: "1 — greyscale", 3: "3 — RGB"}
DEFAULTS = TrainConfig().to_dict()
# Fields a preset should not overwrite (they describe the user's data and machine, not the recipe).
KEEP_ON_PRESET = ("data", "channels", "device", "threads", "name", "seed", "steps", "minutes", "init_from")


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


def _same(name: str, a: Any, b: Any) -> bool:
    return set(_policies(a)) == set(_policies(b)) if name == "diffaug" else a == b


def _current() -> dict[str, Any]:
    """The form's values as its widgets hold them now (the store lags one rerun behind an edit)."""
    ss = st.session_state
    cur = dict(ss.get(K_CFG) or {})
    for k in FIELD_NAMES:
        if W + k in ss:
            v = ss[W + k]
            cur[k] = ",".join(v) if k == "diffaug" else v
    return cur


def modified_fields(preset: str, cfg: dict[str, Any] | None = None) -> list[str]:
    """The recipe fields whose value is not the preset's (the user edited them)."""
    cfg = _current() if cfg is None else cfg
    vals = preset_values(preset)
    return [k for k in FIELD_NAMES if k not in KEEP_ON_PRESET and k in cfg and not _same(k, cfg[k], vals[k])]


def on_preset() -> None:
    """Switch recipe, keeping the fields the user edited (those that differ from the old preset):
    a preset change used to overwrite them silently."""
    ss = st.session_state
    name, old = ss[W + "preset"], ss.get(K_PRESET, "default")
    cur = _current()
    edited = set(modified_fields(old, cur))
    ss[K_PRESET] = name
    set_fields({k: v for k, v in preset_values(name).items()
                if k not in edited and (k not in KEEP_ON_PRESET or k not in cur)})


def reset_to_preset() -> None:
    """Give every recipe field the chosen preset's value again (the edits are dropped on purpose)."""
    name = st.session_state.get(K_PRESET, "default")
    set_fields({k: v for k, v in preset_values(name).items() if k not in KEEP_ON_PRESET})


def preset_notice() -> None:
    """Which fields differ from the preset, and a way back to it."""
    ss = st.session_state
    name = ss.get(K_PRESET, "default")
    mod = modified_fields(name)
    if not mod:
        return
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(f":material/edit: **{state.esc(name)} (modified)**: {', '.join(label(k) for k in mod)} "
               "differ from the preset (kept when you change preset).")
    c2.button("Reset to preset", key="preset_reset", on_click=reset_to_preset, width="stretch",
              help="Give these fields the preset's values again.")


def dataset_warning(data: str) -> str | None:
    """A warning when the form's dataset is not the one last chosen on the Data page."""
    chosen = st.session_state.get(state.K_DATASET)
    if not chosen or str(data).strip() == chosen:
        return None
    return (f"This is not the dataset chosen on the Data page (`{state.esc(chosen)}`): Start trains on "
            f"`{state.esc(data)}`.")


def init_state() -> None:
    ss = st.session_state
    ui_state.restore()  # after a browser reload: the form and dataset as they were
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


def unused_now() -> dict[str, str]:
    """Fields the current settings ignore. Read from the widget state, which holds this run's values
    before any widget is drawn (a field's widget may come before the loss or device that rules it)."""
    from core.estimate import resolve_device

    ss = st.session_state
    current = {k: ss[W + k] for k in FIELD_NAMES if W + k in ss}
    if "diffaug" in current:
        current["diffaug"] = ",".join(current["diffaug"])
    device = str(current.get("device") or "auto")
    return unused_fields(current, device_type=resolve_device(device).split(":")[0])


def field_widget(name: str, unused: dict[str, str], bad: str | None) -> Any:
    """One widget for one TrainConfig field, with the field's help text; disabled when ``unused`` names it."""
    key, lab = W + name, label(name)
    help_ = f"{FIELD_HELP[name]}  \n\n`{name}`"
    if name == bad:
        lab = f":red[{lab}]"
    why_unused = unused.get(name)
    disabled = why_unused is not None and name != bad  # a value the validation refuses must stay fixable
    if disabled:
        help_ += f"  \n\n*Not used: {why_unused}.*"
    t = type(DEFAULTS[name])
    if name == "resolution":
        return st.selectbox(lab, RESOLUTIONS, key=key, help=help_, format_func=lambda r: f"{r} × {r}",
                            disabled=disabled)
    if name == "channels":
        return st.selectbox(lab, list(CHANNELS), key=key, help=help_, format_func=CHANNELS.get, disabled=disabled)
    if name == "device":
        return st.selectbox(lab, device_options(st.session_state[key]), key=key, help=help_, disabled=disabled)
    if name == "diffaug":
        return ",".join(st.multiselect(lab, list(DIFFAUG_POLICIES), key=key, help=help_, placeholder="off",
                                       disabled=disabled))
    if name in FIELD_CHOICES:
        opts = list(FIELD_CHOICES[name])
        if st.session_state[key] not in opts:
            opts.append(st.session_state[key])
        return st.selectbox(lab, opts, key=key, help=help_, disabled=disabled)
    if t is bool:
        return st.toggle(lab, key=key, help=help_, disabled=disabled)
    if t is int:
        return st.number_input(lab, key=key, help=help_, step=1, format="%d", disabled=disabled)
    if t is float:
        return st.number_input(lab, key=key, help=help_, step=FLOAT_STEP.get(name, 0.01), format="%g",
                               disabled=disabled)
    if name == "data":
        value = st.text_input(lab, key=key, help=help_ + "  \n\nChoose and check it on the Data page.",
                              disabled=disabled)
        if (warning := dataset_warning(value)) is not None:
            st.warning(warning, icon=":material/warning:")
        return value
    return st.text_input(lab, key=key, help=help_, disabled=disabled)


def config_form(bad: str | None) -> dict[str, Any]:
    preset_notice()
    values: dict[str, Any] = {}
    unused = unused_now()
    by_group: dict[str, list[str]] = {}
    for f in FIELD_NAMES:
        by_group.setdefault(FIELD_GROUP[f], []).append(f)
    for group, title, icon in GROUPS:
        names = by_group.get(group, [])
        if not names:
            continue
        # The run group opens when the run starts from another run's weights, so that is never hidden.
        opened = group in OPEN_GROUPS or (bad in names) or (group == "run" and bool(st.session_state[K_CFG].get("init_from")))
        opened = opened or (group == "translate" and st.session_state.get(W + "task", "generate") != "generate")
        with st.expander(title, expanded=opened, icon=icon):
            ncols = 3
            for i in range(0, len(names), ncols):
                cols = st.columns(ncols)
                for col, name in zip(cols, names[i:i + ncols]):
                    with col:
                        values[name] = field_widget(name, unused, bad)
            if group == "device":
                cpu_processes_widget(values.get("device", "auto"))
    ui_state.update(form={**st.session_state[K_CFG], **values}, preset=st.session_state.get(K_PRESET, "default"))
    return values
