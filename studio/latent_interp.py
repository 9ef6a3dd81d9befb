"""The Latent explorer's interpolation tab: a strip of frames between two seeds and GIF animations (A ↔ B, loop, walk)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core import latent as L
from core.generator import LoadedGenerator, is_style_based
from studio.latent_cache import K_A, K_B, K_FIRST, TILE_PX, K, gif_cached
from studio.latent_pins import pin_caption, pin_latents, pinned_seeds, pins_for

PATH_LABELS = {"w": "lerp in w", "slerp": "slerp in z", "lerp": "lerp in z"}


@st.fragment
def interpolation(g: LoadedGenerator, ckpt: str, mtime: float, psi: float, class_id: Any) -> None:
    ss = st.session_state
    pins = pinned_seeds()
    ss.setdefault(K_A, pins[-2] if len(pins) >= 2 else int(ss.get(K_FIRST, 0)))
    ss.setdefault(K_B, pins[-1] if pins else int(ss.get(K_FIRST, 0)) + 1)
    c1, c2, c3, c4 = st.columns([1, 1, 2, 2], vertical_alignment="bottom")
    a = int(c1.number_input("Seed A", min_value=0, step=1, key=K_A, help="Start of the path (pin a sample to set it)."))
    b = int(c2.number_input("Seed B", min_value=0, step=1, key=K_B, help="End of the path (the last pinned sample)."))
    style = is_style_based(g.G)
    modes = ["w", "slerp", "lerp"] if style else ["slerp", "lerp"]
    if ss.get(K + "mode") not in modes:  # e.g. "w" kept from a stylegan2 run after picking a dcgan one
        ss[K + "mode"] = modes[0]
    mode = c3.segmented_control("Path", modes, default=modes[0], required=True, key=K + "mode",
                                format_func=PATH_LABELS.get,
                                help="slerp in z follows the sphere where Gaussian latents live (no washed-out "
                                     "middle); lerp in z is a straight line; lerp in w (stylegan2) is a straight "
                                     "line between the mapped styles, the space the synthesis network reads.")
    mode = mode if mode in modes else modes[0]
    in_w = mode == "w"
    steps = c4.slider("Steps", 3, 32, 8, key=K + "steps", help="Frames on the path, both ends included.")
    za, zb = L.explorer_z(g, [a, b], psi)
    wa, wb = (L.to_w(g, za, psi, class_id, a)[0], L.to_w(g, zb, psi, class_id, a)[0]) if in_w else (za, zb)
    path = L.interpolate(wa, wb, steps, "lerp" if in_w else mode)
    frames = L.render_w(g, path) if in_w else L.render(g, path, class_id, seed_for_class=a, psi=psi)
    strip = L.strip_png(frames, min_tile=TILE_PX // 2 if steps > 12 else TILE_PX)
    st.image(strip, output_format="PNG", width="stretch",
             caption=f"{PATH_LABELS[mode]} from seed {a} to seed {b} in {steps} steps")
    st.download_button("Download strip", strip, file_name=f"path_{a}_{b}_{mode}_{steps}.png", mime="image/png",
                       icon=":material/download:", on_click="ignore", key=K + "strip_dl",
                       help="This row of frames as one PNG (nearest-neighbour upscaled, as shown).")

    st.markdown("**Animation**")
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    kinds = {"pingpong": "A ↔ B (back and forth)", "loop": "Loop through pinned samples", "walk": "Random walk from A"}
    kind = c1.radio("Kind", list(kinds), format_func=kinds.get, horizontal=True, key=K + "anim",
                    help="A ↔ B plays the path above forth and back; the loop tours every pinned sample (edits too) and "
                         "returns to the first; the random walk wanders smoothly from seed A and comes back.")
    frames_n = c2.slider("Frames", 8, 96, 32, step=4, key=K + "frames",
                         help="Frames in the animation (per segment for the loop).")
    fps = c3.slider("Frames per second", 4, 30, 12, key=K + "fps", help="Playback speed of the GIF.")
    every = pins_for(g)
    loop_pins = every if len(every) >= 2 else [{"id": str(a), "seed": a}, {"id": str(b), "seed": b}]
    loop_ids = [p["id"] for p in loop_pins]
    if kind == "pingpong":
        z = L.interpolate(wa, wb, frames_n, "lerp" if in_w else mode)
        params: tuple = (a, b, mode, frames_n, psi)
    elif kind == "loop":
        keys = pin_latents(g, loop_pins, psi)
        keys = L.to_w(g, keys, psi, class_id, a) if in_w else keys
        z = L.loop_path(keys, max(2, frames_n // len(loop_pins)), "lerp" if in_w else mode)
        params = (tuple(loop_ids), mode, frames_n, psi)
    else:  # the walk stays on z's Gaussian shell; a style-based G still truncates its w by psi
        z = L.random_walk(za, frames_n, step_size=0.12, seed=a)
        params = (a, frames_n, psi)
    gif, _ = gif_cached(ckpt, mtime, kind, params, g, z, class_id, a, float(fps), psi, in_w and kind != "walk")
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    c1.image(gif, caption=kinds[kind] + (f" ({', '.join(pin_caption(p) for p in loop_pins)})" if kind == "loop" else ""),
             width="stretch")
    with c2:
        st.download_button("Download GIF", gif, file_name=f"{kind}_{a}_{b}_{mode}.gif", mime="image/gif",
                           icon=":material/download:", on_click="ignore",
                           help="An animated GIF of this animation (Pillow; no video codec needed).")
        st.caption(f"{len(z)} frames at {fps} fps, {len(gif) / 1024:,.0f} KiB.")
