"""Shared run + checkpoint pickers for the pages that use a trained generator (Latent explorer, Export)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.generator import checkpoint_choices
from core.runs import RunInfo, list_runs
from studio import state

CKPT_HELP = ("latest = the newest periodic checkpoint; best = the one with the best evaluation metric (when the "
             "run has one); or any kept step. The EMA generator is used when the run trained one.")


def run_and_checkpoint(key_prefix: str, empty_text: str, run_help: str,
                       no_checkpoint_text: Callable[[RunInfo], str]) -> tuple[RunInfo, Path] | None:
    """Run and checkpoint select boxes; None (after a friendly message) when there is nothing to use."""
    root = state.runs_dir()
    runs = list_runs(root)
    if not runs:
        st.info(empty_text.format(root=root), icon=":material/info:")
        return None
    choices = {str(r.path): checkpoint_choices(r.path) for r in runs}
    by_path = {str(r.path): r for r in runs}
    options = list(by_path)
    k_run, k_ckpt = key_prefix + "run", key_prefix + "ckpt"
    ss = st.session_state
    if ss.get(k_run) not in by_path:
        ss[k_run] = next((p for p in options if choices[p]), options[0])  # newest run with a checkpoint

    def fmt(p: str) -> str:
        n = len(choices[p]) - (1 if choices[p] else 0) - (1 if any(lbl == "best" for lbl, _ in choices[p]) else 0)
        return f"{by_path[p].name}  ·  " + (f"{n} checkpoint{'s' if n != 1 else ''}" if choices[p]
                                            else "no checkpoint yet")

    c1, c2 = st.columns([3, 2])
    run = c1.selectbox("Run", options, key=k_run, format_func=fmt, help=run_help)
    ck = choices[run]
    if not ck:
        st.info(no_checkpoint_text(by_path[run]), icon=":material/hourglass_top:")
        return None
    labels = [lbl for lbl, _ in ck]
    if ss.get(k_ckpt) not in labels:
        ss[k_ckpt] = labels[0]
    label = c2.selectbox("Checkpoint", labels, key=k_ckpt, help=CKPT_HELP)
    return by_path[run], dict(ck)[label]
