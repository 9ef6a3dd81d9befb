"""Translate page: pick a pix2pix or cyclegan run, upload an image or pick a held-out input, see its translation."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import streamlit as st

from core.generator import checkpoint_choices
from core.runs import RunInfo, list_runs
from studio import state
from studio.translate_images import decode, pil, png, translate

K = "tr_"
K_RUN, K_CKPT, K_DIR, K_SRC, K_HELD, K_UPLOAD = (K + s for s in ("run", "ckpt", "direction", "source", "held", "upload"))
SOURCES = ("Held-out input", "Upload an image")
SHOW_PX = 256  # each image on screen: nearest-neighbour, so a 32 px output is visible and not blurred
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]


# ------------------------------------------------------------------ cached core calls
@st.cache_resource(show_spinner="Loading the translator…", max_entries=4)
def translator(ckpt: str, mtime: float, direction: str):  # noqa: ANN201 - (G, cfg, channels)
    from core.translate.cli import load_translator

    return load_translator(ckpt, direction)


@st.cache_data(show_spinner=False, max_entries=8)
def held_out(data: str, task: str, direction: str) -> list[tuple[str, str, int | None, str | None, int | None]]:
    """(name, input file, half, target file, half) of the run's held-out items for ``direction``: the
    same split the training held out (core.translate.data's fixed seed), so these were never trained on.
    ``half`` 0/1 is the left/right of a side-by-side AB image; unpaired runs have no target."""
    from core.translate.data import _split, detect_layout

    lay = detect_layout(data, task)
    a_in = direction == "AtoB"
    if lay.kind == "side_by_side":
        return [(Path(p).name, p, 0 if a_in else 1, p, 1 if a_in else 0)
                for p, _ in (lay.pairs[i] for i in _split(len(lay.pairs))[0].tolist())]
    if lay.kind == "paired":
        rows = [lay.pairs[i] for i in _split(len(lay.pairs))[0].tolist()]
        return [(Path(a if a_in else b).name, a if a_in else b, None, b if a_in else a, None) for a, b in rows]
    files = lay.files_a if a_in else lay.files_b
    return [(Path(files[i]).name, files[i], None, None, None) for i in _split(len(files))[0].tolist()]


# ------------------------------------------------------------------ picking
def translation_runs() -> list[RunInfo] | None:
    """The runs whose config task is pix2pix or cyclegan; None (after a message) when there are none."""
    root = state.runs_dir()
    runs = list_runs(root)
    if not runs:
        st.info(f"No runs yet in `{state.esc(root)}`. Train a **pix2pix** or **cyclegan** run on the **Train** page "
                "(scan a folder with `A/` and `B/` on the **Data** page first); it appears here with its first "
                "checkpoint.", icon=":material/info:")
        return None
    ours = [r for r in runs if r.config.get("task", "generate") in ("pix2pix", "cyclegan")]
    if not ours:
        st.info(f"None of the {len(runs)} run{'s' if len(runs) != 1 else ''} in `{state.esc(root)}` translates images: "
                "they generate from noise (use the **Latent explorer** for those). Train a run with task "
                "**pix2pix** (paired A/ + B/ folders) or **cyclegan** (unpaired) to use this page.",
                icon=":material/info:")
        return None
    return ours


def pick() -> tuple[RunInfo, Path, str] | None:
    runs = translation_runs()
    if runs is None:
        return None
    by_path = {str(r.path): r for r in runs}
    choices = {p: checkpoint_choices(p) for p in by_path}
    ss = st.session_state
    if ss.get(K_RUN) not in by_path:
        ss[K_RUN] = next((p for p in by_path if choices[p]), next(iter(by_path)))
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    run = c1.selectbox("Run", list(by_path), key=K_RUN, help="pix2pix and cyclegan runs under the runs root.",
                       format_func=lambda p: f"{by_path[p].name}  ·  {by_path[p].config.get('task')}")
    info = by_path[run]
    if not choices[run]:
        st.info(f"**{state.esc(info.name)}** has no checkpoint yet: its translator appears here as soon as the first "
                "one is written.", icon=":material/hourglass_top:")
        return None
    labels = [lbl for lbl, _ in choices[run]]
    if ss.get(K_CKPT) not in labels:
        ss[K_CKPT] = labels[0]
    label = c2.selectbox("Checkpoint", labels, key=K_CKPT)
    own = str(info.config.get("direction", "AtoB"))
    if info.config.get("task") == "cyclegan":  # two generators: both ways
        if ss.get(K_DIR) not in ("AtoB", "BtoA"):
            ss[K_DIR] = own
        direction = c3.segmented_control("Direction", ["AtoB", "BtoA"], key=K_DIR, required=True,
                                         help="A cyclegan run learns both ways: A → B and B → A.")
    else:
        direction = own
        c3.caption(f"Direction: **{own}** (a pix2pix run learns one way only)")
    return info, dict(choices[run])[label], str(direction)


def image_input(info: RunInfo, direction: str, resolution: int, channels: int):  # noqa: ANN201
    """(name, input array, target array or None) from a held-out item or an upload; None when not chosen yet."""
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    src = c1.segmented_control("Input", SOURCES, key=K_SRC, required=True, default=SOURCES[0],
                               help="A held-out item of the run's own folder (never trained on), or any image.")
    if src == SOURCES[1]:
        up = c2.file_uploader("Image to translate", type=UPLOAD_TYPES, key=K_UPLOAD,
                              help="Any size: it is centre-cropped to a square and resized to the run's "
                                   f"{resolution} px, as in training.")
        if up is None:
            c2.caption("Choose an image file to see its translation.")
            return None
        return up.name, decode(io.BytesIO(up.getvalue()), resolution, channels), None
    try:
        items = held_out(str(info.config.get("data", "")), str(info.config.get("task")), direction)
    except Exception as e:  # noqa: BLE001 - the folder may have moved since training: say so, offer upload
        c2.error(f"The run's held-out inputs are not available (upload an image instead): {state.esc(e)}",
                 icon=":material/error:")
        return None
    if not items:
        st.info("This run's folder is too small to hold items out: upload an image instead.", icon=":material/info:")
        return None
    names = [it[0] for it in items]
    if st.session_state.get(K_HELD) not in names:
        st.session_state[K_HELD] = names[0]
    name = c2.selectbox("Held-out input", names, key=K_HELD, help="Items the training held out for its triplets "
                        "and eval/l1: the network has never trained on them.")
    _, fin, hin, ftg, htg = items[names.index(name)]
    target = decode(ftg, resolution, channels, htg) if ftg is not None else None
    return name, decode(fin, resolution, channels, hin), target


def main() -> None:
    st.title("Translate")
    st.caption("Turn an image into its translation with a trained pix2pix or cyclegan run: pick a held-out input "
               "or upload your own (`python -m core translate` does the same for a folder).")
    picked = pick()
    if picked is None:
        return
    info, ckpt, direction = picked
    try:
        G, cfg, channels = translator(str(ckpt), ckpt.stat().st_mtime, direction)
    except Exception as e:  # noqa: BLE001 - a page shows errors, never a traceback
        state.show_error(e, prefix=f"Could not load `{ckpt.name}` of {info.name}: ")
        return
    res = cfg.resolution
    st.caption(f"{cfg.task} · {direction} · {res} px · {channels} channel{'s' if channels > 1 else ''} · "
               f"shown {SHOW_PX} px, nearest-neighbour")
    try:
        got = image_input(info, direction, res, channels)
        if got is None:
            return
        name, x, target = got
        y = translate(G, x)
    except Exception as e:  # noqa: BLE001 - a broken upload or file: its name and why, not a traceback
        state.show_error(e, prefix="Could not translate this image: ")
        return
    src, dst = direction[0], direction[-1]
    shown = [(f"Input ({src})", pil(x)), (f"Output ({dst}, translated)", pil(y))]
    if target is not None:
        shown.append((f"Target ({dst}, real)", pil(target)))
    for col, (cap, im) in zip(st.columns(3), shown):
        col.image(png(im, SHOW_PX), caption=cap, width=SHOW_PX)
    stem = Path(name).stem
    st.download_button("Download the output", png(pil(y)), file_name=f"{stem}_{direction}.png", mime="image/png",
                       icon=":material/download:", key=K + "download",
                       help=f"The translated image at the run's {res} × {res} px (PNG).")
    if target is not None:
        l1 = float(np.abs(y.astype(np.float32) - target.astype(np.float32)).mean() / 255)
        st.caption(f"Mean |output − target| on this item: {l1:.3f} of the pixel range.")


main()
