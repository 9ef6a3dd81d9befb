"""Latent explorer: samples by seed, pins, interpolation GIFs, per-dimension and PCA edits, nearest training
images and style mixing. Thin over core.latent (the sections live in studio/latent_*.py); results are cached."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.generator import LoadedGenerator
from core.runs import RunInfo
from studio import state
from studio.latent_cache import K_CLASS, K_COUNT, K_FIRST, K_PSI, PIXELATED_CSS, K, load_cached
from studio.latent_edit import editing, nearest
from studio.latent_grid import seed_grid
from studio.latent_interp import interpolation
from studio.latent_pins import pinned_strip
from studio.mixing import mixing_section
from studio.pickers import run_and_checkpoint

BY_SEED = "(by seed)"


# ------------------------------------------------------------------ pickers
def pick_run() -> tuple[RunInfo, Any] | None:
    """Run + checkpoint selectors; None (after a friendly message) when there is nothing to explore."""
    def no_checkpoint(info: RunInfo) -> str:
        every = info.config.get("checkpoint_every")
        return (f"**{state.esc(info.name)}** has no checkpoint yet"
                + (f" (one is saved every {every:,} steps and at the end)" if isinstance(every, int) else "")
                + ". Its generator appears here as soon as the first one is written; pick another run meanwhile.")
    return run_and_checkpoint(
        K, "No runs yet in `{root}`. Train one on the **Train** page (or with `python -m core train`); "
           "its generator appears here as soon as the first checkpoint is saved.",
        "Any run folder under the runs root. The newest run with a checkpoint is chosen first.", no_checkpoint)


def class_picker(g: LoadedGenerator) -> Any:
    if not g.num_classes:
        return None
    opts = [BY_SEED] + list(g.class_names)
    if st.session_state.get(K_CLASS) not in opts:
        st.session_state[K_CLASS] = BY_SEED
    c = st.selectbox("Class", opts, key=K_CLASS,
                     help="Conditional model: the class every sample is drawn from. '(by seed)' gives seed s "
                          "the class s mod the number of classes, as `python -m core generate` does.")
    return None if c == BY_SEED else opts.index(c) - 1


# ------------------------------------------------------------------ page
def main() -> None:
    st.title("Latent explorer")
    st.html(PIXELATED_CSS)  # every image nearest-neighbour, whatever the browser stretches it to
    st.caption("Walk through what a trained generator has learned: sample by seed, interpolate, edit, and check "
               "for memorised training images.")
    picked = pick_run()
    if picked is None:
        return
    info, ckpt_path = picked
    try:
        mtime = ckpt_path.stat().st_mtime
        g = load_cached(str(ckpt_path), mtime)
    except Exception as e:  # noqa: BLE001 - a page shows errors, never a traceback
        state.show_error(e, prefix=f"Could not load `{ckpt_path.name}` of {info.name}: ")
        return
    cfg = g.cfg
    st.caption(f"{cfg.arch} · {g.resolution} px · {g.channels} channel{'s' if g.channels > 1 else ''} · "
               f"z of size {g.latent_dim} · step {g.step:,} · "
               + ("EMA generator" if g.uses_ema else "raw generator (the run has no EMA)")
               + (f" · conditional on {g.num_classes} classes" if g.num_classes else ""))
    ss = st.session_state
    ss.setdefault(K_FIRST, 0)
    ss.setdefault(K_COUNT, 16)
    ss.setdefault(K_PSI, 1.0)
    try:
        psi, class_id = seed_grid(g, class_picker)
        pinned_strip(g, psi, class_id)
        key_args = (g, str(ckpt_path), mtime, psi, class_id)
        t1, t2, t3, t4 = st.tabs([":material/timeline: Interpolate & animate", ":material/tune: Edit",
                                  ":material/image_search: Nearest training images", ":material/style: Style mixing"])
        with t1:
            interpolation(*key_args)
        with t2:
            editing(*key_args)
        with t3:
            nearest(*key_args)
        with t4:
            mixing_section(g, psi, class_id)
    except Exception as e:  # noqa: BLE001
        state.show_error(e, prefix=f"{ckpt_path.name} of {info.name}: ")


main()
