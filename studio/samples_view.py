"""The Monitor's sample history: a slider through the fixed-noise grids that stays where the user puts
it, a Latest button, a large view (tiles of at least 64 px), downloads and a progress timelapse GIF."""
from __future__ import annotations

import io
from pathlib import Path

import streamlit as st

from core.runs import RunInfo
from core.samples_timelapse import MIN_TILE, enlarge_scale, timelapse_gif
from studio import state

K_LARGE = "monitor_large"
UNTRAINED = ("Step 0 is the **untrained generator**: before any training every sample looks alike "
             "(often a flat grey square). The same noise vectors are drawn again at every later step.")


def keys(run_name: str) -> tuple[str, str]:
    """Session keys of a run's slider value and of its "follow the latest grid" flag."""
    key = f"scrub_{run_name}"
    return key, f"{key}_follow"


def chosen_step(run_name: str, steps: list[int]) -> int:
    """The grid to show: the latest while following, else the one the user chose (while it exists).

    The follow flag is only changed by the slider's and the Latest button's callbacks, which run
    before the script: read here, it already knows about the user's last move."""
    ss = st.session_state
    key, follow = keys(run_name)
    if ss.get(follow, True) or ss.get(key) not in steps:
        ss[key], ss[follow] = steps[-1], True
    return ss[key]


def _on_slide(run_name: str, last: int) -> None:
    key, follow = keys(run_name)
    # Put back at the end of the slider as it was drawn: follow new grids again.
    st.session_state[follow] = st.session_state.get(key) == last


def _on_latest(run_name: str) -> None:
    st.session_state[keys(run_name)[1]] = True


@st.cache_data(show_spinner=False, max_entries=64)
def _large_png(path: str, mtime: float) -> bytes | None:
    """The grid upscaled (nearest neighbour) so each tile is at least MIN_TILE px."""
    from PIL import Image, UnidentifiedImageError

    from studio.state import MAX_SHOWN_PIXELS

    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_SHOWN_PIXELS:  # a header claiming 30000 x 30000 px: refused undecoded
                return None
            img = im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, MemoryError):
        return None
    s = enlarge_scale(img.width, MIN_TILE)
    if s > 1:
        img = img.resize((img.width * s, img.height * s), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def large_png(path: Path) -> bytes | None:
    try:
        return _large_png(str(path), path.stat().st_mtime)
    except OSError:
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def _timelapse(grids: tuple[tuple[int, str], ...]) -> bytes:
    return timelapse_gif(grids)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


TRIPLET_ROWS = {
    "pix2pix": "Rows: inputs (held-out pairs first), the generator's outputs, the targets; each column is one pair.",
    "cyclegan": "Rows: A, G(A), F(G(A)), then B, F(B), G(F(B)); held-out images where there are enough.",
}


def generated(info: RunInfo, large: bool) -> None:
    """The sample-grid card: heading, grid, slider with Latest, downloads and the timelapse."""
    grids = info.samples()
    if not grids:
        st.markdown("##### Generated")
        st.info(f"The first sample grid appears after {info.config.get('sample_every', 'a few')} steps.",
                icon=":material/hourglass_top:")
        return
    steps = [s for s, _ in grids]
    chosen = chosen_step(info.name, steps)
    path = dict(grids)[chosen]
    task = info.config.get("task", "generate")
    title = {"pix2pix": "Input → output → target", "cyclegan": "A → B → A and B → A → B"}.get(task, "Generated")
    st.markdown(f"##### {title} · step {chosen:,}" + (" — untrained generator" if chosen == 0 else ""))
    data = large_png(path) if large else state.png_file(path, min_width=480)
    state.show_png(data, width="content" if large else "stretch", missing="This sample grid is unreadable.")
    if chosen == 0:
        st.caption(UNTRAINED)
    key, follow = keys(info.name)
    if len(steps) > 1:
        st.select_slider("Training step of this grid", steps, key=key, format_func=lambda s: f"{s:,}",
                         on_change=_on_slide, args=(info.name, steps[-1]),
                         help="Every grid comes from the same fixed noise vectors, so you can watch the same "
                              "images take shape. Move the slider to stay on a step; put it back at the end, or "
                              "press Latest, to follow new grids again.")
    elif task == "generate":
        st.caption("Same fixed noise every time, so you can watch the same images take shape.")
    if task != "generate":  # what the rows of a translation grid are (core/translate/step.py sample_fixed)
        st.caption(TRIPLET_ROWS.get(task, ""))
    with st.container(horizontal=True, gap="small"):
        st.button("Latest", key=f"{key}_latest", icon=":material/skip_next:", on_click=_on_latest,
                  args=(info.name,), disabled=bool(st.session_state.get(follow, True)),
                  help="Jump to the newest grid and keep following new ones as they are written.")
        st.toggle("Large view", key=K_LARGE, help=f"Show the grid across the page, at least {MIN_TILE} px a tile.")
    with st.container(horizontal=True, gap="small"):
        st.download_button("Grid", lambda: _read(path), file_name=f"{info.name}-step{chosen:07d}.png",
                           mime="image/png", icon=":material/download:", on_click="ignore",
                           key=f"{key}_dl", help=f"Download this grid as a PNG ({path.name}).")
        if len(steps) > 1:
            frames = tuple((s, str(p)) for s, p in grids)
            st.download_button("Timelapse", lambda: _timelapse(frames), file_name=f"{info.name}-timelapse.gif",
                               mime="image/gif", icon=":material/movie:", on_click="ignore", key=f"{key}_gif",
                               help="An animated GIF of the fixed-noise grids over training (up to 48 frames, "
                                    "evenly spaced, each labelled with its step).")


def reals(info: RunInfo, large: bool) -> None:
    st.markdown("##### Real images")
    p = info.path / "reals.png"
    state.show_png(large_png(p) if large else state.png_file(p, min_width=480),
                   width="content" if large else "stretch", missing="No reals.png in this run folder.")
