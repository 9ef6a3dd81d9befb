"""The Latent explorer's style-mixing grid (rows: source seeds, columns: style seeds); logic in core.latent.styles."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core import latent as L
from core.generator import LoadedGenerator, is_style_based, layer_groups
from core.imaging import grid_png

K = "lat_mix_"
GROUP_HELP = {"coarse": "pose, layout and overall shape", "middle": "features and parts",
              "fine": "colour scheme and texture"}
TILE_PX = 96
GRID_TILE_W = 136  # px per grid column, gap included


@st.fragment
def mixing_section(g: LoadedGenerator, psi: float, class_id: Any) -> None:
    """The grid for a style-based generator; a one-line reason for every other family."""
    if not is_style_based(g.G):
        st.info(L.NO_MIXING.format(arch=g.cfg.arch))
        return
    groups = layer_groups(g.G)
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
    src0 = int(c1.number_input("First source seed", min_value=0, max_value=2**31 - 16, value=0, step=1, key=K + "src",
                               help="Row i (below the header row) is source seed first+i: its layout is kept."))
    sty0 = int(c2.number_input("First style seed", min_value=0, max_value=2**31 - 16, value=100, step=1,
                               key=K + "sty", help="Column j (right of the first column) is style seed first+j: "
                                                    "its styles replace the source's at the chosen layers."))
    rows = int(c3.select_slider("Sources", options=[1, 2, 3, 4, 5, 6], value=4, key=K + "rows",
                                help="How many source seeds (rows)."))
    cols = int(c4.select_slider("Styles", options=[1, 2, 3, 4, 5, 6], value=4, key=K + "cols",
                                help="How many style seeds (columns)."))
    group = st.radio("Styles taken from the style seed", list(groups), horizontal=True, key=K + "group",
                     format_func=lambda k: f"{k} (w {groups[k][0]}–{groups[k][-1]})" if len(groups[k]) > 1
                     else f"{k} (w {groups[k][0]})",
                     help="Which of the generator's per-layer styles come from the style seed: "
                          + "; ".join(f"{k} = {v} (layers {', '.join(map(str, groups[k]))})"
                                      for k, v in GROUP_HELP.items())
                          + f". This {g.resolution} px generator has {g.G.num_ws} styles.") or "coarse"
    src, sty = list(range(src0, src0 + rows)), list(range(sty0, sty0 + cols))
    imgs = L.mixing_grid(g, src, sty, group, psi, class_id)
    n = cols + 1
    grid = st.container(width=GRID_TILE_W * n, gap="small")  # tiles of about 120 px, not the page's width
    for r in range(rows + 1):
        line = grid.columns(n, gap="small")
        for c in range(n):
            if r == 0 and c == 0:
                line[c].caption("source ↓ · style →")
                continue
            cap = f"style {sty[c - 1]}" if r == 0 else f"source {src[r - 1]}" if c == 0 else None
            line[c].image(L.image_png(imgs[r * n + c], min_size=TILE_PX), caption=cap, output_format="PNG",
                          width="stretch")
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.download_button("Download mixing grid", lambda: grid_png(imgs, nrow=n, min_tile=64),
                           file_name=f"mix_{group}_src{src0}-{src[-1]}_style{sty0}-{sty[-1]}_psi{psi:g}.png",
                           mime="image/png", icon=":material/download:", on_click="ignore", key=K + "dl",
                           help="This grid as one PNG (first row: the style seeds, first column: the sources).")
        trunc = ("no truncation (ψ = 1)" if psi >= 1 else
                 f"truncation ψ = {psi:g} in w (toward the average style), set above the seed grid")
        st.caption(f"Each tile keeps its row's source and takes the {group} styles of its column's seed; {trunc}.")
