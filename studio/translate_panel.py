"""Data page, translation folders: the layout (paired A/B, side-by-side AB, unpaired), a preview of pairs,
and "Use for training" that selects the folder with the Train form set to pix2pix or cyclegan."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio import state

K_LAYOUT = "gs_translate_layout"  # {"token": (folder, id(report)), "layout": Layout | None}
PREVIEW_PX = 128  # each side of a pair on screen (nearest-neighbour, so small images stay sharp)
N_PAIRS = 4


def layout_for(folder: str, report) -> object | None:  # noqa: ANN001
    """The folder's translation layout, looked at once per scan (headers only, no decoding)."""
    from core.data.translation_scan import find_layout

    token = (folder, id(report))
    cached = st.session_state.get(K_LAYOUT)
    if not cached or cached["token"] != token:
        cached = st.session_state[K_LAYOUT] = {"token": token, "layout": find_layout(folder)}
    return cached["layout"]


def task_of(lay) -> str:  # noqa: ANN001
    return "pix2pix" if lay.paired else "cyclegan"


def _side(path: str, half: int | None, size: int):  # noqa: ANN202
    """One side as training decodes it: centre crop, resize; ``half`` 0/1 is the left/right of an AB image."""
    from PIL import Image, ImageOps

    from core.data.decode import resize_center_crop

    with Image.open(path) as im:
        im.seek(0)
        im = (ImageOps.exif_transpose(im) or im).convert("RGB")
        if half is not None:
            w, h = im.size
            im = im.crop((0, 0, w // 2, h) if half == 0 else (w // 2, 0, w, h))
        return resize_center_crop(im, size).resize((PREVIEW_PX, PREVIEW_PX), Image.NEAREST)


def pair_images(lay, resolution: int, n: int = N_PAIRS) -> list[tuple[str, object]]:  # noqa: ANN001
    """(caption, A | B image) for the first ``n`` pairs; unpaired folders show the i-th image of each side."""
    from PIL import Image

    if lay.kind == "side_by_side":
        items = [(Path(p).name, p, 0, p, 1) for p, _ in lay.pairs[:n]]
    elif lay.kind == "paired":
        items = [(Path(a).stem, a, None, b, None) for a, b in lay.pairs[:n]]
    else:
        items = [(f"{Path(a).name} · {Path(b).name}", a, None, b, None) for a, b in zip(lay.files_a[:n], lay.files_b[:n])]
    out = []
    for name, pa, ha, pb, hb in items:
        try:
            a, b = _side(pa, ha, resolution), _side(pb, hb, resolution)
        except Exception as e:  # noqa: BLE001 - Pillow raises many types; say which file, keep the rest
            out.append((f"{name}: cannot decode ({e})", None))
            continue
        both = Image.new("RGB", (2 * PREVIEW_PX + 6, PREVIEW_PX), (255, 255, 255))
        both.paste(a, (0, 0))
        both.paste(b, (PREVIEW_PX + 6, 0))
        out.append((name, both))
    return out


def use_for_translation(folder: str, lay, choose) -> None:  # noqa: ANN001
    """Select the folder and set the Train form to the task's preset (its data, machine and run fields kept)."""
    from studio.train_form import KEEP_ON_PRESET, W, preset_values
    from studio.ui_state import DEFAULTS, K_CFG, K_PRESET

    task = task_of(lay)
    count = len(lay.pairs) if lay.paired else len(lay.files_a) + len(lay.files_b)
    choose(folder, channels=0, num_classes=0, count=count)  # channels: the loader finds them (0 = auto)
    ss = st.session_state
    cfg = ss.setdefault(K_CFG, dict(DEFAULTS))
    for k, v in preset_values(task).items():
        if k not in KEEP_ON_PRESET:
            cfg[k] = v
            ss.pop(W + k, None)  # the Train page's widgets take the new values from the store when drawn
    ss[K_PRESET] = task
    ss.pop(W + "preset", None)
    state.flash(f"**{state.esc(Path(folder).name)}** is selected for training as **{task}** "
                f"({lay.summary().split(': ', 1)[-1]}). The Train form uses the {task} preset.")
    st.rerun()


def translate_panel(folder: str, lay, resolution: int, choose) -> None:  # noqa: ANN001
    """The layout, its unmatched names and notes, a preview of pairs, and the way to train on it."""
    task = task_of(lay)
    with st.container(border=True):
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.markdown(f":material/compare: **Image-to-image translation folder** — {state.esc(lay.summary())}. "
                    f"Trains with **{task}** ({'paired: each A has its B' if lay.paired else 'unpaired: two domains'}).")
        if st.session_state.get(state.K_DATASET) == folder:
            c2.success("Selected for training.", icon=":material/check:")
            if c2.button("Continue to Train", type="primary", icon=":material/arrow_forward:", width="stretch",
                         key="translate_continue"):
                state.go("train")
        elif c2.button("Use for training", type="primary", icon=":material/check:", width="stretch", key="translate_use",
                       help=f"Select this folder and set the Train form to the {task} preset (task={task})."):
            use_for_translation(folder, lay, choose)
        for note in lay.notes:
            st.caption(f":material/info: {state.esc(note)}")
        if lay.unmatched_a or lay.unmatched_b:
            with st.expander(f"Unmatched names ({len(lay.unmatched_a)} in A, {len(lay.unmatched_b)} in B)",
                             icon=":material/link_off:"):
                rows = [{"side": s, "file": n} for s, names in (("A", lay.unmatched_a), ("B", lay.unmatched_b))
                        for n in names[:500]]
                st.dataframe(rows, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(rows)))
        if lay.rejected:
            st.caption(f"{len(lay.rejected)} images left out, e.g. {state.esc(lay.rejected[0][0])}: "
                       f"{state.esc(lay.rejected[0][1])}")
        st.markdown("##### " + ("Pairs (A | B)" if lay.paired else "A | B (unpaired: any image of each side)")
                    + f" at {resolution}×{resolution}")
        pairs = pair_images(lay, resolution)
        cols = st.columns(max(1, len(pairs)))
        for col, (name, im) in zip(cols, pairs):
            if im is None:
                col.caption(f":material/broken_image: {state.esc(name)}")
            else:
                col.image(im, caption=name, width="stretch")
