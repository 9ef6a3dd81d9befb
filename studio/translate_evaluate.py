"""The Runs page's Evaluate for pix2pix / cyclegan runs: pixel scores on held-out items (core.translate.evaluate)."""
from __future__ import annotations

import streamlit as st

from core.runs import RunInfo
from studio import state

NAMES = {"l1": "L1 to target (held-out)", "psnr": "PSNR dB (held-out)", "ssim": "SSIM (held-out)",
         "cycle_l1_aba": "cycle L1 A→B→A", "cycle_l1_bab": "cycle L1 B→A→B",
         "identity_l1_a": "identity L1 on A", "identity_l1_b": "identity L1 on B"}


def translation_evaluate_popover(info: RunInfo, key: str, on_done) -> None:
    """Checkpoint + device, then core.translate.evaluate and core.metrics.record; ``on_done(result)`` stores it."""
    task = (info.config or {}).get("task")
    what = ("L1, PSNR and SSIM of the outputs against their targets on the held-out pairs" if task == "pix2pix"
            else "cycle-consistency (A→B→A, B→A→B) and identity L1 on the held-out A and B images: unpaired "
                 "data has no targets, so this measures consistency, not closeness to a right answer")
    with st.popover("Evaluate", icon=":material/analytics:", width="stretch", key=f"{key}_tpop",
                    help=f"Score the translator: {what}. Needs no downloaded network."):
        st.caption(f"Scores {what}.")
        has_best = (info.path / "checkpoints" / "best.pt").exists()
        which = st.selectbox("Checkpoint", ["latest", "best"] if has_best else ["latest"], key=f"{key}_tckpt")
        if st.button("Run evaluation", type="primary", key=f"{key}_tgo", width="stretch",
                     help="Translate the held-out items, score them, and add the result to evaluations.jsonl."):
            from core.metrics import record
            from core.translate.evaluate import evaluate_translation
            ck = info.path / "checkpoints" / "best.pt" if which == "best" else None
            try:
                with st.spinner("Evaluating on the held-out items…"):
                    res = evaluate_translation(info.path, ck, "cpu")
                    record(info.path, res)
            except Exception as e:  # noqa: BLE001 - CheckpointError, DataError (data folder gone), ...: no traceback
                state.show_error(e, prefix="Evaluation failed: ")
                return
            on_done(res)
            st.toast("Evaluation recorded", icon=":material/check:")
            st.rerun()
