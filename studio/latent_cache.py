"""The Latent explorer's cached core calls, image helpers and shared session keys (used by studio/latent_*.py)."""
from __future__ import annotations

from typing import Any

import streamlit as st
import torch

from core import latent as L
from core.generator import LoadedGenerator, load_generator

K = "lat_"
K_FIRST, K_COUNT = K + "first_seed", K + "count"  # run/checkpoint keys: K + "run", K + "ckpt" (studio.pickers)
K_PSI, K_CLASS, K_PINNED = K + "psi", K + "class", K + "pinned"
K_A, K_B, K_EDIT = K + "seed_a", K + "seed_b", K + "edit_seed"
K_NN = K + "nn_request"
TILE_PX = 128      # small samples are upscaled (nearest neighbour) to at least this many pixels
BIG_PX = 320
# Every image of the page is drawn nearest-neighbour: the browser stretches each PNG to its column, and its
# default (bilinear) filter would blur the few-pixel samples, strips and GIFs unevenly.
PIXELATED_CSS = ("<style>[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img "
                 "{image-rendering: pixelated;}</style>")


@st.cache_resource(show_spinner="Loading the generator…", max_entries=4)
def load_cached(ckpt: str, mtime: float) -> LoadedGenerator:
    """The generator (EMA when present) and discriminator of one checkpoint; reloaded when the file changes."""
    return load_generator(ckpt, with_discriminator=True)


@st.cache_resource(show_spinner=False)
def sample_cache() -> L.SampleCache:
    """One LRU of generated images for the whole server, keyed by (run, checkpoint, seed, psi, class)."""
    return L.SampleCache(4096)


@st.cache_resource(show_spinner="Finding the main directions of variation (PCA over 512 samples)…", max_entries=8)
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
