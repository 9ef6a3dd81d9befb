"""The Latent explorer's Edit tab (per-dimension and PCA sliders, pin or download the edit) and nearest training images."""
from __future__ import annotations

import html
from typing import Any

import streamlit as st
import torch

from core import latent as L
from core.generator import LoadedGenerator
from studio import state
from studio.latent_cache import (
    BIG_PX,
    K_EDIT,
    K_FIRST,
    K_NN,
    K,
    directions_cached,
    sample_cache,
    show,
    train_features_cached,
    training_cached,
)
from studio.latent_pins import pin_edit, pinned_seeds

PCA_K = 6
NN_MAX_IMAGES = 20000
NN_PER_ROW = 4  # neighbours a row, beside the sample: large enough to judge, room for a file name under each


def name_html(name: str, distance: float) -> str:
    """Two one-line captions under a neighbour: its file name and its folder + distance, cut with an ellipsis
    when the column is narrow (never broken mid-word); the whole relative path shows on hover."""
    folder, _, base = name.rpartition("/")
    line = ("<div style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis;text-align:center;"
            "font-size:0.875rem;{}'>{}</div>")
    return (f"<div title='{html.escape(name, quote=True)} · distance {distance:.3f}' style='line-height:1.4'>"
            + line.format("", html.escape(base))
            + line.format("opacity:0.6", html.escape(f"{folder}/ · " if folder else "") + f"{distance:.3f}")
            + "</div>")


def _reset_edits(dims: list[int], z: torch.Tensor, seed: int) -> None:
    for d in dims:
        st.session_state[f"{K}dim_{seed}_{d}"] = round(float(z[d]), 2)
    for i in range(PCA_K):
        st.session_state[f"{K}pc_{i}"] = 0.0


@st.fragment
def editing(g: LoadedGenerator, ckpt: str, mtime: float, psi: float, class_id: Any) -> None:
    ss = st.session_state
    pins = pinned_seeds()
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
                v = cols[i % 2].slider(f"z[{d}]", -4.0, 4.0, step=0.05, key=key,
                                       help=f"Coordinate {d} of the latent; this seed's value is {float(z[d]):+.2f}.")
                if v != round(float(z[d]), 2):  # an untouched slider leaves z exactly as the seed made it
                    values[d] = v
        k = min(PCA_K, g.latent_dim)
        dirs = directions_cached(ckpt, mtime, g, k, class_id)
        st.caption("Directions of greatest variation in the generator's early features (PCA)",
                   help=f"Each slider moves the latent along one of the directions in which the generator's early "
                        f"layer (`{dirs.layer}`) varies most over {dirs.samples} random samples, found by principal "
                        "component analysis and carried back to the latent z (the GANSpace method). The "
                        "percentage is the share of that variation the direction explains; the first few "
                        "usually change pose, size or colour across the whole image.")
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
        with st.container(horizontal=True, gap="small"):
            if st.button("Pin edit", icon=":material/push_pin:", key=K + "pin_edit", disabled=dz == 0,
                         help="Keep the edited image in the Pinned strip above: the pin stores the seed and the "
                              "edited latent, so it is regenerated exactly, on every page."):
                pin_edit(seed, edited, psi, class_id, dz)
                st.rerun(scope="app")  # the strip lives outside this fragment
            st.download_button("Download PNG", lambda: L.image_png(imgs[1], min_size=0), mime="image/png",
                               file_name=f"seed{seed}_edited.png" if dz else f"seed{seed}.png",
                               icon=":material/download:", on_click="ignore", key=K + "edit_dl",
                               help=f"The edited image as a PNG at the generator's full resolution "
                                    f"({g.resolution}×{g.resolution} px, not upscaled).")


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
    names = L.image_names(ds, nb.indices)
    cols = st.columns(min(NN_PER_ROW + 1, k + 1))
    with cols[0]:
        show(sample, caption=f"seed {seed}")
    per_row = len(cols) - 1
    for i, d in enumerate(nb.distances):
        if i and i % per_row == 0:
            cols = st.columns(min(NN_PER_ROW + 1, k + 1))
        with cols[1 + i % per_row], st.container(gap="xxsmall"):
            show(nb.images[i])
            st.markdown(name_html(names[i], d), unsafe_allow_html=True)
    st.caption(f"Searched {nb.searched:,} of {nb.total:,} training images in "
               f"{'pixel' if nb.space == 'pixel' else 'discriminator-feature'} space"
               + (" (a fixed random subset)" if nb.searched < nb.total else "") + "; smaller = closer. "
               + (f"Names are relative to `{ds.source}`." if ds.report is not None else
                  f"`{ds.source}` is built in, so its images are numbered, not named."),
               help="Closest first: " + "; ".join(f"{n} ({d:.3f})" for n, d in zip(names, nb.distances)))
