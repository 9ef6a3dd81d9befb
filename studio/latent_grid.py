"""The Latent explorer's seed grid: a page of samples by seed, random or sequential paging, pins and download."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import streamlit as st

from core import latent as L
from core.generator import LoadedGenerator
from core.imaging import grid_png
from studio.latent_cache import K_COUNT, K_FIRST, K_PSI, K, sample_cache, show
from studio.latent_pins import pinned_seeds, toggle_seed

MAX_FIRST = 2**31 - 64
RANDOM_SEEDS_BELOW = 1_000_000  # random pages start below this: seed numbers stay short enough to note down


def random_first(below: int = RANDOM_SEEDS_BELOW) -> int:
    """A random first seed for a fresh page (the page shows its seed numbers, so every image can be regenerated)."""
    return secrets.randbelow(below)


def _random_page() -> None:
    ss = st.session_state
    old = int(ss.get(K_FIRST, 0))
    new = random_first()
    while new == old:  # a dice roll always changes the page
        new = random_first()
    ss[K_FIRST] = new


def _page(delta: int) -> None:
    ss = st.session_state
    ss[K_FIRST] = min(MAX_FIRST, max(0, int(ss.get(K_FIRST, 0)) + delta * int(ss.get(K_COUNT, 16))))


def seed_grid(g: LoadedGenerator, class_picker: Callable[[LoadedGenerator], Any]) -> tuple[float, Any]:
    ss = st.session_state
    cols = st.columns([2, 2, 3, 2, 2] if g.num_classes else [2, 2, 3, 2], vertical_alignment="bottom")
    c1, c2, c4, c3 = cols[0], cols[1], cols[2], cols[-1]
    c1.number_input("First seed", min_value=0, max_value=MAX_FIRST, step=1, key=K_FIRST,
                    help="Sample i of the grid uses seed first+i. The same seed always gives the same image "
                         "(for the same checkpoint, truncation and class).")
    c2.select_slider("Samples", options=[8, 16, 24, 32], key=K_COUNT, help="How many seeds to show.")
    n = int(ss[K_COUNT])
    c3.button("New seeds", icon=":material/casino:", on_click=_random_page, key=K + "random", width="stretch",
              help=f"Roll the dice: a page of {n} seeds starting at a random seed below "
                   f"{RANDOM_SEEDS_BELOW:,}. The seed numbers stay visible, so any image can be made again.")
    psi = float(c4.slider("Truncation ψ", 0.0, 1.0, step=0.05, key=K_PSI,
                          help="1 = the full prior. Lower values give more typical, cleaner images and less "
                               "variety; 0 gives the mean image for every seed. Style-based generators "
                               "(stylegan2) pull w toward the average style w_avg; the others draw z from "
                               "a truncated normal and pull it toward 0."))
    class_id = None
    if g.num_classes:
        with cols[3]:
            class_id = class_picker(g)
    st.caption(L.truncation_note(g))  # under the row: beside the slider it pushed the row's widgets apart
    first = int(ss[K_FIRST])
    seeds = list(range(first, first + n))
    imgs = L.sample_seeds(g, seeds, psi, class_id, cache=sample_cache())
    pinned = set(pinned_seeds())
    per_row = 8
    for r in range(0, n, per_row):
        cols = st.columns(per_row)
        for col, s, img in zip(cols, seeds[r:r + per_row], imgs[r:r + per_row]):
            with col, st.container(gap="xxsmall"):  # the Pin button belongs to the image above it
                on = s in pinned
                show(img, caption=f"seed {s}" + (" · pinned" if on else ""))
                st.button("Unpin" if on else "Pin", key=f"{K}pin_{s}", on_click=toggle_seed, args=(s,),
                          type="primary" if on else "tertiary", width="stretch",
                          icon=None if on else ":material/push_pin:",  # "Unpin" with an icon wraps at 1024 px
                          help="Pin this seed: it stays in the Pinned strip below across pages; the last two "
                               "pinned seeds are interpolated, the last one is edited.")
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.button("Previous page", icon=":material/chevron_left:", on_click=_page, args=(-1,), key=K + "prev",
                  disabled=first == 0, help=f"The {n} seeds before these ({max(0, first - n)}–{first - 1}).")
        st.button("Next page", icon=":material/chevron_right:", on_click=_page, args=(1,), key=K + "next",
                  help=f"The {n} seeds after these ({first + n}–{first + 2 * n - 1}).")
        # The PNG is made only on click (8 tiles a row, each at least 64 px, nearest neighbour).
        st.download_button("Download grid", lambda: grid_png(imgs, nrow=per_row, min_tile=64),
                           file_name=f"seeds_{first}-{first + n - 1}_psi{psi:g}.png", mime="image/png",
                           icon=":material/download:", on_click="ignore", key=f"{K}grid_dl",
                           help="These samples as one PNG grid, 8 a row.")
        st.caption(f"Seeds {first:,}–{first + n - 1:,}")
    return psi, class_id
