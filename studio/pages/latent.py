"""Latent explorer: samples by seed, truncation, interpolation GIFs, per-dimension and PCA edits,
and nearest training images. Thin over core.latent; every result is cached per run + checkpoint."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
import torch

from core import latent as L
from core.generator import LoadedGenerator, is_style_based, load_generator
from core.imaging import grid_png
from core.runs import RunInfo
from studio import state
from studio.mixing import mixing_section
from studio.pickers import run_and_checkpoint

K = "lat_"
K_FIRST, K_COUNT = K + "first_seed", K + "count"  # run/checkpoint keys: K + "run", K + "ckpt" (studio.pickers)
K_PSI, K_CLASS, K_PINNED = K + "psi", K + "class", K + "pinned"
K_A, K_B, K_EDIT = K + "seed_a", K + "seed_b", K + "edit_seed"
K_NN = K + "nn_request"
TILE_PX = 128      # small samples are upscaled (nearest neighbour) to at least this many pixels
BIG_PX = 320
MAX_PINS = 6
PCA_K = 6
NN_MAX_IMAGES = 20000
BY_SEED = "(by seed)"
PATH_LABELS = {"w": "lerp in w", "slerp": "slerp in z", "lerp": "lerp in z"}


# ------------------------------------------------------------------ cached core calls
@st.cache_resource(show_spinner="Loading the generator…", max_entries=4)
def load_cached(ckpt: str, mtime: float) -> LoadedGenerator:
    """The generator (EMA when present) and discriminator of one checkpoint; reloaded when the file changes."""
    return load_generator(ckpt, with_discriminator=True)


@st.cache_resource(show_spinner=False)
def sample_cache() -> L.SampleCache:
    """One LRU of generated images for the whole server, keyed by (run, checkpoint, seed, psi, class)."""
    return L.SampleCache(4096)


@st.cache_resource(show_spinner="Finding principal directions (PCA over 512 latents)…", max_entries=8)
def directions_cached(ckpt: str, mtime: float, _g: LoadedGenerator, k: int, class_id: Any) -> L.Directions:
    return L.principal_directions(_g, k=k, n_samples=512, class_id=class_id)


@st.cache_resource(show_spinner="Loading the training images…", max_entries=2)
def training_cached(source: str, resolution: int, channels: int, _g: LoadedGenerator):
    return L.load_training_images(_g)


@st.cache_resource(show_spinner="Computing discriminator features of the training images…", max_entries=2)
def train_features_cached(ckpt: str, mtime: float, source: str, _g: LoadedGenerator, _images: torch.Tensor,
                          _labels: torch.Tensor | None, max_images: int) -> torch.Tensor:
    idx = L.subset_indices(len(_images), max_images)
    return L.d_features(_g.D, _images[idx], _labels[idx] if _labels is not None else None)


@st.cache_data(show_spinner=False, max_entries=64)
def gif_cached(ckpt: str, mtime: float, kind: str, params: tuple, _g: LoadedGenerator, _z: torch.Tensor,
               class_id: Any, seed_for_class: int, fps: float, psi: float = 1.0,
               in_w: bool = False) -> tuple[bytes, bytes]:
    """(GIF bytes, PNG strip of up to 12 frames) for a latent path (of styles w when ``in_w``)."""
    frames = L.render_w(_g, _z) if in_w else L.render(_g, _z, class_id, seed_for_class, psi=psi)
    scale = max(1, -(-TILE_PX // frames.shape[-1]))
    gif = L.gif_bytes(frames, fps=fps, scale=scale, boomerang=kind == "pingpong")
    step = max(1, len(frames) // 12)
    return gif, L.strip_png(frames[::step][:12], min_tile=TILE_PX // 2)


def png(img: torch.Tensor, px: int = TILE_PX) -> bytes:
    return L.image_png(img, min_size=px)


def show(img: torch.Tensor, caption: str | None = None, px: int = TILE_PX) -> None:
    st.image(png(img, px), caption=caption, output_format="PNG", width="stretch")


# ------------------------------------------------------------------ pickers
def pick_run() -> tuple[RunInfo, Path] | None:
    """Run + checkpoint selectors; None (after a friendly message) when there is nothing to explore."""
    def no_checkpoint(info: RunInfo) -> str:
        every = info.config.get("checkpoint_every")
        return (f"**{state.esc(info.name)}** has no checkpoint yet"
                + (f" (one is saved every {every:,} steps and at the end)" if isinstance(every, int) else "")
                + ". Its generator appears here as soon as the first one is written; pick another run meanwhile.")
    return run_and_checkpoint(
        K, "No runs yet in `{root}`. Train one on the **Train** page (or with `python -m core train`); "
           "its generator appears here as soon as the first checkpoint is saved.",
        "Any run folder under the runs root. The newest run with a checkpoint is chosen first.", no_checkpoint)


def class_picker(g: LoadedGenerator) -> Any:
    if not g.num_classes:
        return None
    opts = [BY_SEED] + list(g.class_names)
    if st.session_state.get(K_CLASS) not in opts:
        st.session_state[K_CLASS] = BY_SEED
    c = st.selectbox("Class", opts, key=K_CLASS,
                     help="Conditional model: the class every sample is drawn from. '(by seed)' gives seed s "
                          "the class s mod the number of classes, as `python -m core generate` does.")
    return None if c == BY_SEED else opts.index(c) - 1


# ------------------------------------------------------------------ pins
def _pinned() -> list[int]:
    return list(st.session_state.get(K_PINNED, []))


def _toggle_pin(seed: int) -> None:
    pins = _pinned()
    if seed in pins:
        pins.remove(seed)
    else:
        pins = (pins + [seed])[-MAX_PINS:]
    st.session_state[K_PINNED] = pins
    if seed in pins:  # the newest pin becomes seed B (the previous one A) and the sample to edit
        st.session_state[K_EDIT] = seed
        if len(pins) >= 2:
            st.session_state[K_A], st.session_state[K_B] = pins[-2], pins[-1]
        else:
            st.session_state[K_A] = seed


def _new_seeds() -> None:
    ss = st.session_state
    ss[K_FIRST] = int(ss.get(K_FIRST, 0)) + int(ss.get(K_COUNT, 16))


# ------------------------------------------------------------------ sections
def seed_grid(g: LoadedGenerator) -> tuple[float, Any]:
    ss = st.session_state
    cols = st.columns([2, 2, 3, 2, 2] if g.num_classes else [2, 2, 3, 2], vertical_alignment="bottom")
    c1, c2, c4, c3 = cols[0], cols[1], cols[2], cols[-1]
    c1.number_input("First seed", min_value=0, max_value=2**31 - 64, step=1, key=K_FIRST,
                    help="Sample i of the grid uses seed first+i. The same seed always gives the same image "
                         "(for the same checkpoint, truncation and class).")
    c2.select_slider("Samples", options=[8, 16, 24, 32], key=K_COUNT, help="How many seeds to show.")
    c3.button("New seeds", icon=":material/casino:", on_click=_new_seeds, width="stretch",
              help="Show the next batch of seeds.")
    psi = float(c4.slider("Truncation ψ", 0.0, 1.0, step=0.05, key=K_PSI,
                          help="1 = the full prior. Lower values give more typical, cleaner images and less "
                               "variety; 0 gives the mean image for every seed. Style-based generators "
                               "(stylegan2) pull w toward the average style w_avg; the others draw z from "
                               "a truncated normal and pull it toward 0."))
    c4.caption(L.truncation_note(g))
    class_id = None
    if g.num_classes:
        with cols[3]:
            class_id = class_picker(g)
    first, n = int(ss[K_FIRST]), int(ss[K_COUNT])
    seeds = list(range(first, first + n))
    imgs = L.sample_seeds(g, seeds, psi, class_id, cache=sample_cache())
    pins = _pinned()
    per_row = 8
    for r in range(0, n, per_row):
        cols = st.columns(per_row)
        for col, s, img in zip(cols, seeds[r:r + per_row], imgs[r:r + per_row]):
            with col, st.container(gap="xxsmall"):  # the Pin button belongs to the image above it
                pinned = s in pins
                show(img, caption=f"seed {s}" + (" · pinned" if pinned else ""))
                st.button("Unpin" if pinned else "Pin", key=f"{K}pin_{s}", on_click=_toggle_pin, args=(s,),
                          type="primary" if pinned else "tertiary", width="stretch",
                          icon=":material/push_pin:",
                          help="Pin this seed: the last two pinned seeds are interpolated, the last one is edited.")
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        # The PNG is made only on click (8 tiles a row, each at least 64 px, nearest neighbour).
        st.download_button("Download grid", lambda: grid_png(imgs, nrow=per_row, min_tile=64),
                           file_name=f"seeds_{first}-{first + n - 1}_psi{psi:g}.png", mime="image/png",
                           icon=":material/download:", on_click="ignore", key=f"{K}grid_dl",
                           help="These samples as one PNG grid, 8 a row.")
        if pins:
            st.caption("Pinned: " + ", ".join(str(p) for p in pins))
    return psi, class_id


@st.fragment
def interpolation(g: LoadedGenerator, ckpt: str, mtime: float, psi: float, class_id: Any) -> None:
    ss = st.session_state
    pins = _pinned()
    ss.setdefault(K_A, pins[-2] if len(pins) >= 2 else int(ss.get(K_FIRST, 0)))
    ss.setdefault(K_B, pins[-1] if pins else int(ss.get(K_FIRST, 0)) + 1)
    c1, c2, c3, c4 = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
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
    st.image(L.strip_png(frames, min_tile=TILE_PX // 2 if steps > 12 else TILE_PX), output_format="PNG",
             caption=f"{PATH_LABELS[mode]} from seed {a} to seed {b} in {steps} steps", width="stretch")

    st.markdown("**Animation**")
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    kinds = {"pingpong": "A ↔ B (back and forth)", "loop": "Loop through pinned seeds", "walk": "Random walk from A"}
    kind = c1.radio("Kind", list(kinds), format_func=kinds.get, horizontal=True, key=K + "anim",
                    help="A ↔ B plays the path above forth and back; the loop tours every pinned seed and "
                         "returns to the first; the random walk wanders smoothly from seed A and comes back.")
    frames_n = c2.slider("Frames", 8, 96, 32, step=4, key=K + "frames",
                         help="Frames in the animation (per segment for the loop).")
    fps = c3.slider("Frames per second", 4, 30, 12, key=K + "fps", help="Playback speed of the GIF.")
    loop_seeds = pins if len(pins) >= 2 else [a, b]
    if kind == "pingpong":
        z = L.interpolate(wa, wb, frames_n, "lerp" if in_w else mode)
        params: tuple = (a, b, mode, frames_n, psi)
    elif kind == "loop":
        keys = L.explorer_z(g, loop_seeds, psi)
        keys = L.to_w(g, keys, psi, class_id, a) if in_w else keys
        z = L.loop_path(keys, max(2, frames_n // len(loop_seeds)), "lerp" if in_w else mode)
        params = (tuple(loop_seeds), mode, frames_n, psi)
    else:  # the walk stays on z's Gaussian shell; a style-based G still truncates its w by psi
        z = L.random_walk(za, frames_n, step_size=0.12, seed=a)
        params = (a, frames_n, psi)
    gif, _ = gif_cached(ckpt, mtime, kind, params, g, z, class_id, a, float(fps), psi, in_w and kind != "walk")
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    c1.image(gif, caption=kinds[kind] + (f" ({', '.join(map(str, loop_seeds))})" if kind == "loop" else ""),
             width="stretch")
    with c2:
        st.download_button("Download GIF", gif, file_name=f"{kind}_{a}_{b}_{mode}.gif", mime="image/gif",
                           icon=":material/download:", on_click="ignore",
                           help="An animated GIF of this animation (Pillow; no video codec needed).")
        st.caption(f"{len(z)} frames at {fps} fps, {len(gif) / 1024:,.0f} KiB.")


def _reset_edits(dims: list[int], z: torch.Tensor, seed: int) -> None:
    for d in dims:
        st.session_state[f"{K}dim_{seed}_{d}"] = round(float(z[d]), 2)
    for i in range(PCA_K):
        st.session_state[f"{K}pc_{i}"] = 0.0


@st.fragment
def editing(g: LoadedGenerator, ckpt: str, mtime: float, psi: float, class_id: Any) -> None:
    ss = st.session_state
    pins = _pinned()
    ss.setdefault(K_EDIT, pins[-1] if pins else int(ss.get(K_FIRST, 0)))
    left, right = st.columns([3, 2])
    with left:
        c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
        seed = int(c1.number_input("Seed to edit", min_value=0, step=1, key=K_EDIT,
                                   help="The sample to edit (pinning a sample sets it)."))
        default_dims = list(range(min(4, g.latent_dim)))
        dims = c2.multiselect("Latent dimensions", list(range(g.latent_dim)), default=default_dims, key=K + "dims",
                              max_selections=12, help="Which coordinates of z get a slider (12 at most).")
        z = L.explorer_z(g, [seed], psi)[0]
        values: dict[int, float] = {}
        if dims:
            st.caption("Latent coordinates (start at this seed's value; z ~ N(0, 1) per coordinate)")
            cols = st.columns(2)
            for i, d in enumerate(dims):
                key = f"{K}dim_{seed}_{d}"
                ss.setdefault(key, round(float(z[d]), 2))
                values[d] = cols[i % 2].slider(f"z[{d}]", -4.0, 4.0, step=0.05, key=key,
                                               help=f"Coordinate {d} of the latent; this seed's value is "
                                                    f"{float(z[d]):+.2f}.")
        k = min(PCA_K, g.latent_dim)
        dirs = directions_cached(ckpt, mtime, g, k, class_id)
        st.caption(f"Principal directions (GANSpace: PCA of `{dirs.layer}` activations over {dirs.samples} "
                   "latents, carried back to z)")
        coeffs = []
        cols = st.columns(2)
        for i in range(k):
            ss.setdefault(f"{K}pc_{i}", 0.0)
            coeffs.append(cols[i % 2].slider(
                f"PC{i + 1} · {100 * float(dirs.explained[i]):.1f}% of variance", -4.0, 4.0, step=0.1,
                key=f"{K}pc_{i}", help="Move along this principal direction, in standard deviations of the prior. "
                                        "Early components usually change pose, size or colour globally."))
        st.button("Reset edits", icon=":material/restart_alt:", on_click=_reset_edits, args=(dims, z, seed),
                  help="Put every slider back to the seed's own values.")
    edited = L.edit_directions(L.edit_dims(z, values), dirs, coeffs)
    imgs = L.render(g, torch.stack([z, edited]), class_id, seed_for_class=seed, psi=psi)
    with right:
        c1, c2 = st.columns(2)
        with c1:
            show(imgs[0], caption=f"seed {seed}", px=BIG_PX)
        with c2:
            show(imgs[1], caption="edited", px=BIG_PX)
        dz = float((edited - z).norm())
        st.caption(f"|Δz| = {dz:.2f} (a typical z has norm ≈ {g.latent_dim ** 0.5:.1f})")


@st.fragment
def nearest(g: LoadedGenerator, ckpt: str, mtime: float, psi: float, class_id: Any) -> None:
    ss = st.session_state
    seed = int(ss.get(K_EDIT, int(ss.get(K_FIRST, 0))))
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    space = c1.segmented_control("Compare in", ["pixel", "d-features"], default="pixel", required=True, key=K + "nn_space",
                                 format_func={"pixel": "Pixels", "d-features": "D's features"}.get,
                                 help="Pixels: Euclidean distance of the images. D's features: cosine distance "
                                      "between the discriminator's features of this checkpoint, which ignores small "
                                      "shifts and colour changes.") or "pixel"
    k = c2.slider("Neighbours", 4, 16, 8, key=K + "nn_k", help="How many training images to show.")
    request = (ckpt, mtime, seed, round(psi, 4), class_id, space, k)
    if c3.button("Find", icon=":material/search:", width="stretch",
                 help="Search the training set for the images closest to the sample being edited (seed above). "
                      "Near-copies suggest the generator memorised its data."):
        ss[K_NN] = request
    if ss.get(K_NN) != request:
        st.caption(f"Finds the training images closest to seed {seed} (the sample being edited; pin a sample to "
                   "choose it).")
        return
    src = str(g.dataset.get("source") or g.cfg.data)
    try:
        ds = training_cached(src, g.resolution, g.channels, g)
    except Exception as e:  # noqa: BLE001 - the data may have moved since training
        state.show_error(e, prefix=f"Could not load the training data `{src}`: ")
        return
    sample = L.sample_seeds(g, [seed], psi, class_id, cache=sample_cache())[0]
    feats = None
    labels = ds.labels if (g.D is not None and L.d_needs_labels(g.D)) else None
    if labels is not None and labels.numel() and int(labels.max()) >= g.num_classes:
        labels = None
    sample_label = None
    if labels is not None:
        from core.generator import class_labels
        sample_label = int(class_labels(g, [seed], class_id)[0])
    if space == "d-features":
        if L.d_needs_labels(g.D) and labels is None:
            st.warning("This discriminator needs class labels for its features, and the training data has none "
                       "that match; compare in pixels instead.")
            return
        feats = train_features_cached(ckpt, mtime, src, g, ds.images, labels, NN_MAX_IMAGES)
    with st.spinner("Searching…"):
        nb = L.nearest_images(sample, ds.images, k, space, D=g.D, train_features=feats, max_images=NN_MAX_IMAGES,
                              sample_label=sample_label)
    fp = g.dataset.get("fingerprint")
    if fp and ds.fingerprint != fp:
        st.warning(f"The data at `{src}` changed since training (fingerprint {ds.fingerprint[:10]} ≠ {fp[:10]}).")
    cols = st.columns(min(9, k + 1))
    with cols[0]:
        show(sample, caption=f"seed {seed}")
    per_row = len(cols) - 1
    for i, (idx, d) in enumerate(zip(nb.indices, nb.distances)):
        if i and i % per_row == 0:
            cols = st.columns(min(9, k + 1))
        with cols[1 + i % per_row]:
            show(nb.images[i], caption=f"#{idx} · {d:.3f}")
    st.caption(f"Searched {nb.searched:,} of {nb.total:,} training images in "
               f"{'pixel' if nb.space == 'pixel' else 'discriminator-feature'} space"
               + (" (a fixed random subset)" if nb.searched < nb.total else "") + "; smaller = closer.")


# ------------------------------------------------------------------ page
def main() -> None:
    st.title("Latent explorer")
    st.caption("Walk through what a trained generator has learned: sample by seed, interpolate, edit, and check "
               "for memorised training images.")
    picked = pick_run()
    if picked is None:
        return
    info, ckpt_path = picked
    try:
        mtime = ckpt_path.stat().st_mtime
        g = load_cached(str(ckpt_path), mtime)
    except Exception as e:  # noqa: BLE001 - a page shows errors, never a traceback
        state.show_error(e, prefix=f"Could not load `{ckpt_path.name}` of {info.name}: ")
        return
    cfg = g.cfg
    st.caption(f"{cfg.arch} · {g.resolution} px · {g.channels} channel{'s' if g.channels > 1 else ''} · "
               f"z of size {g.latent_dim} · step {g.step:,} · "
               + ("EMA generator" if g.uses_ema else "raw generator (the run has no EMA)")
               + (f" · conditional on {g.num_classes} classes" if g.num_classes else ""))
    ss = st.session_state
    ss.setdefault(K_FIRST, 0)
    ss.setdefault(K_COUNT, 16)
    ss.setdefault(K_PSI, 1.0)
    try:
        psi, class_id = seed_grid(g)
        key_args = (g, str(ckpt_path), mtime, psi, class_id)
        t1, t2, t3, t4 = st.tabs([":material/timeline: Interpolate & animate", ":material/tune: Edit",
                                  ":material/image_search: Nearest training images", ":material/style: Style mixing"])
        with t1:
            interpolation(*key_args)
        with t2:
            editing(*key_args)
        with t3:
            nearest(*key_args)
        with t4:
            mixing_section(g, psi, class_id)
    except Exception as e:  # noqa: BLE001
        state.show_error(e, prefix=f"{ckpt_path.name} of {info.name}: ")


main()
