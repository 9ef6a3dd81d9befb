"""Data page: upload images or a zip from the browser into a managed folder under the runs root, then scan it."""
from __future__ import annotations

import streamlit as st

from studio import state

K_FILES = "upload_files"
K_NAME = "upload_name"


def _save(folder_key: str, rescan_key: str) -> None:
    """Upload button callback: write the files (core.data.upload), then point the path box at them and scan."""
    from core.data.errors import DataError
    from core.data.upload import save_upload, uploads_folder
    files = st.session_state.get(K_FILES) or []
    if not files:
        state.flash("Choose some images or a .zip first.", "info")
        return
    dest = uploads_folder(state.runs_dir(), st.session_state.get(K_NAME) or "upload")
    try:
        rep = save_upload(dest, [(f.name, f) for f in files])
    except (DataError, OSError) as e:
        state.flash(f"Upload failed: {e}", "info")
        return
    skipped = "; ".join(f"{n} ({why})" for n, why in rep.skipped[:5])
    more = f" and {len(rep.skipped) - 5} more" if len(rep.skipped) > 5 else ""
    state.flash(rep.summary() + (f". Skipped: {skipped}{more}" if skipped else "."), "success")
    st.session_state[folder_key] = str(dest)
    st.session_state[rescan_key] = True  # the page scans it on this rerun, with the usual report
    st.session_state.pop(K_FILES, None)


def upload_panel(folder_key: str, rescan_key: str) -> None:
    with st.expander("No shell on this machine? Upload images or a .zip from your computer",
                     icon=":material/upload:"):
        st.caption(f"Saved under `{state.runs_dir() / 'uploads'}` and scanned like any folder. A zip keeps its "
                   "subfolders (they become class labels); paths that leave the folder, links, hidden files and "
                   "zip bombs are skipped. Up to 200 MB per file through the browser.")
        st.file_uploader("Images or a zip", key=K_FILES, accept_multiple_files=True,
                         type=["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "zip"])
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Folder name", key=K_NAME, value=None, placeholder="my-pictures",
                      help="The folder under uploads/ the files go into (letters, digits, '-', '_', '.').")
        c2.button("Upload and scan", key="upload_go", icon=":material/upload:", width="stretch",
                  on_click=_save, args=(folder_key, rescan_key))
