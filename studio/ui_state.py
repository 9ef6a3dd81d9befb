"""What the Data and Train pages were set to, kept in a small file under the runs root so a reload keeps it.

A browser reload starts a new Streamlit session with an empty ``st.session_state``: without this, F5
reset the dataset and every Train field to the ``shapes`` defaults, and Start then trained on the
wrong data. The file is shared by the tabs of one runs root (the last change wins), is advisory
(a missing, foreign or hostile file restores nothing) and never holds more than the form.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import streamlit as st

from core.config import PRESETS, TrainConfig
from studio import state

K_CFG = "gs_cfg"                # the Train form's field values (survive page switches)
K_PRESET = "gs_preset"          # the Train form's preset
K_APPLIED = "gs_cfg_applied"    # (dataset, resolution) last copied from the Data page into the form
DEFAULTS = TrainConfig().to_dict()
FILE = ".gan-studio-ui.json"
MAX_BYTES = 64 * 1024
K_RESTORED = "gs_ui_restored"   # this session has read the file once
K_SAVED = "gs_ui_saved"         # what this session wrote last (to write only on a change)


def path() -> Path:
    return state.runs_dir() / FILE


def read() -> dict[str, Any]:
    """The saved state, or {} when there is none or it cannot be used."""
    try:
        p = path()
        if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def update(**fields: Any) -> None:
    """Merge ``fields`` into the file (atomically); failures are silent: this is a convenience."""
    data = {**read(), **fields}
    if st.session_state.get(K_SAVED) == data:
        return
    try:
        d = state.runs_dir()
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, d / FILE)
    except (OSError, TypeError, ValueError):
        return
    st.session_state[K_SAVED] = data


def _form(saved: Any) -> dict[str, Any]:
    """The saved Train fields that still exist and have their field's type (others stay default)."""
    out: dict[str, Any] = {}
    if not isinstance(saved, dict):
        return out
    for k, v in saved.items():
        if k not in DEFAULTS or isinstance(v, bool) != isinstance(DEFAULTS[k], bool):
            continue
        t = type(DEFAULTS[k])
        if isinstance(v, t) or (t is float and isinstance(v, int)):
            out[k] = t(v)
    return out


def restore() -> None:
    """Once per session: put the saved dataset choice and Train form into session_state (what this
    session already has wins)."""
    ss = st.session_state
    if ss.get(K_RESTORED):
        return
    ss[K_RESTORED] = True
    data = read()
    ds = data.get("dataset")
    if isinstance(ds, str) and ds and state.K_DATASET not in ss:
        ss[state.K_DATASET] = ds
        info = data.get("dataset_info")
        if isinstance(info, dict):
            ss[state.K_DATASET_INFO] = {k: info.get(k) for k in ("channels", "num_classes", "count")
                                        if isinstance(info.get(k), int) or info.get(k) is None}
    res = data.get("resolution")
    if isinstance(res, int) and not isinstance(res, bool) and "gs_resolution" not in ss:
        ss["gs_resolution"] = res
    if K_CFG not in ss and isinstance(data.get("form"), dict):
        ss[K_CFG] = {**DEFAULTS, **_form(data["form"])}
        preset = data.get("preset")
        ss[K_PRESET] = preset if isinstance(preset, str) and preset in PRESETS else "default"
        # The form already holds the dataset it had: do not pre-fill it again from the Data page.
        ss[K_APPLIED] = (ss.get(state.K_DATASET), ss.get("gs_resolution"))
