"""GAN Studio: the Streamlit entry point (`python run_studio.py`, or `streamlit run studio/app.py`)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from studio import state  # noqa: E402
from studio.shortcuts import fold_sidebar_when_narrow  # noqa: E402
from studio.sidebar import job_status  # noqa: E402

st.set_page_config(page_title="GAN Studio", page_icon=str(state.ROOT / "assets" / "icon.png"),
                   layout="wide", initial_sidebar_state="expanded")

pages = {
    "Prepare": [
        st.Page(state.page_path("data"), title="Data", icon=":material/photo_library:", url_path="data",
                default=True),
        st.Page(state.page_path("train"), title="Train", icon=":material/model_training:", url_path="train"),
    ],
    "Watch & compare": [
        st.Page(state.page_path("monitor"), title="Monitor", icon=":material/monitoring:", url_path="monitor"),
        st.Page(state.page_path("runs"), title="Runs", icon=":material/folder_open:", url_path="runs"),
    ],
    "Use your generator": [
        st.Page(state.page_path("latent"), title="Latent explorer", icon=":material/explore:", url_path="latent"),
        st.Page(state.page_path("translate"), title="Translate", icon=":material/compare:", url_path="translate"),
        st.Page(state.page_path("export"), title="Export", icon=":material/ios_share:", url_path="export"),
    ],
}

nav = st.navigation(pages)
logo = state.ROOT / "assets" / "logo.svg"
if logo.exists():
    st.logo(str(logo), size="large")
state.inject_css()
fold_sidebar_when_narrow()
job_status(live=nav.url_path != "monitor")
nav.run()
