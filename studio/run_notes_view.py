"""A run card's tags and notes: shown under its name, edited in a small popover, saved to RUN/notes.json."""
from __future__ import annotations

import streamlit as st

from core.run_notes import MAX_NOTE_CHARS, read_notes, write_notes
from core.runs import RunInfo
from studio import state


def notes(info: RunInfo, idx: str) -> None:
    """Tags as badges and the notes' first line, then an Edit notes popover."""
    data = read_notes(info.path)
    line = data["notes"].strip().splitlines()[0] if data["notes"].strip() else ""
    bits = [f":violet-badge[{state.esc(t)}]" for t in data["tags"]]
    if line:
        more = "…" if len(line) > 120 or len(data["notes"].strip().splitlines()) > 1 else ""
        bits.append(f"<small>{state.esc(line[:120])}{more}</small>")
    if bits:
        st.markdown(" ".join(bits), unsafe_allow_html=True)
    label = "Edit notes" if data["notes"] or data["tags"] else "Add notes"
    with st.popover(label, icon=":material/edit_note:", help="Tags and notes, kept in the run folder (notes.json); "
                    "the Filter box above matches them."):
        tags = st.text_input("Tags", value=" ".join(data["tags"]), key=f"tags_{idx}",
                             placeholder="baseline hinge try-2", help="Separated by spaces or commas.")
        text = st.text_area("Notes", value=data["notes"], key=f"notes_{idx}", max_chars=MAX_NOTE_CHARS, height=120)
        if st.button("Save", key=f"savenotes_{idx}", icon=":material/save:", type="primary"):
            try:
                write_notes(info.path, text, tags)
            except OSError as e:
                st.error(f"Could not save the notes: {state.esc(str(e))}")
                return
            st.toast("Notes saved", icon=":material/check:")
            st.rerun()
