"""Pinned samples of the Latent explorer: seeds and edited latents kept across pages, shown as a strip of thumbnails."""
from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st
import torch

from core import latent as L
from core.generator import LoadedGenerator
from core.imaging import grid_png
from studio.latent_cache import K_A, K_B, K_EDIT, K_PINNED, TILE_PX, K, sample_cache, show

MAX_PINS = 8


def pins() -> list[dict]:
    """The pins, oldest first: {"id", "seed"} for a seed, plus "z", "psi", "class_id", "dz" for an edit."""
    return [p if isinstance(p, dict) else {"id": str(p), "seed": int(p)}
            for p in st.session_state.get(K_PINNED, [])]


def pinned_seeds() -> list[int]:
    """Seeds pinned as they are (not edited), oldest first: the interpolation's A and B come from these."""
    return [p["seed"] for p in pins() if "z" not in p]


def fits(g: LoadedGenerator, p: dict) -> bool:
    """Whether a pin can be drawn by this generator: any seed can; an edit needs a z of the same size (and a
    class it has), so an edit pinned on another run stays stored but is not shown."""
    if "z" not in p:
        return True
    cls = p.get("class_id")
    return len(p["z"]) == g.latent_dim and (cls is None or (bool(g.num_classes) and int(cls) < g.num_classes))


def pins_for(g: LoadedGenerator) -> list[dict]:
    return [p for p in pins() if fits(g, p)]


def _store(items: list[dict]) -> None:
    st.session_state[K_PINNED] = items[-MAX_PINS:]


def toggle_seed(seed: int) -> None:
    """Pin a seed (or unpin it when it is pinned); the newest pin becomes seed B (the previous A) and the sample to edit."""
    items = pins()
    pid = str(int(seed))
    if any(p["id"] == pid for p in items):
        _store([p for p in items if p["id"] != pid])
        return
    _store(items + [{"id": pid, "seed": int(seed)}])
    ss = st.session_state
    ss[K_EDIT] = int(seed)
    seeds = pinned_seeds()
    if len(seeds) >= 2:
        ss[K_A], ss[K_B] = seeds[-2], seeds[-1]
    else:
        ss[K_A] = int(seed)


def edit_pin(seed: int, z: torch.Tensor, psi: float, class_id: Any, dz: float) -> dict:
    """A pin of an edited latent: the seed it started from and the edited z itself, so it regenerates exactly."""
    values = [float(v) for v in z.flatten().tolist()]
    digest = hashlib.sha1(torch.tensor(values, dtype=torch.float32).numpy().tobytes()).hexdigest()[:8]
    return {"id": f"{int(seed)}~{digest}", "seed": int(seed), "z": values, "psi": float(psi),
            "class_id": class_id, "dz": float(dz)}


def pin_edit(seed: int, z: torch.Tensor, psi: float, class_id: Any, dz: float) -> None:
    pin = edit_pin(seed, z, psi, class_id, dz)
    items = [p for p in pins() if p["id"] != pin["id"]]
    _store(items + [pin])


def unpin(pid: str) -> None:
    _store([p for p in pins() if p["id"] != pid])


def pin_latents(g: LoadedGenerator, items: list[dict], psi: float) -> torch.Tensor:
    """(len(items), latent_dim) latents of the pins: the seed's z, or the stored edited z."""
    out = [torch.tensor(p["z"], dtype=torch.float32) if "z" in p else L.explorer_z(g, [p["seed"]], psi)[0]
           for p in items]
    return torch.stack(out) if out else torch.empty(0, g.latent_dim)


def pin_images(g: LoadedGenerator, items: list[dict], psi: float, class_id: Any) -> torch.Tensor:
    """Images of the pins: a seed at the current ψ and class (as in the grid), an edit as it was pinned."""
    imgs = []
    for p in items:
        if "z" in p:
            z = torch.tensor(p["z"], dtype=torch.float32)
            imgs.append(L.render(g, z, p.get("class_id"), seed_for_class=p["seed"], psi=p.get("psi", 1.0))[0])
        else:
            imgs.append(L.sample_seeds(g, [p["seed"]], psi, class_id, cache=sample_cache())[0])
    return torch.stack(imgs) if imgs else torch.empty(0, g.channels, g.resolution, g.resolution)


def pin_caption(p: dict) -> str:
    return f"seed {p['seed']} · edited" if "z" in p else f"seed {p['seed']}"


def pinned_strip(g: LoadedGenerator, psi: float, class_id: Any, per_row: int = 8) -> None:
    """The pins as thumbnails, each with an Unpin button; they stay while the grid pages through seeds."""
    items = pins_for(g)
    hidden = len(pins()) - len(items)
    if hidden:
        st.caption(f"{hidden} pinned edit{'s' if hidden > 1 else ''} of another generator (another z size or "
                   "classes) hidden here; they return with that run.")
    if not items:
        st.caption(f"Pin samples (the pin under each image, or **Pin edit** on the Edit tab) to keep up to "
                   f"{MAX_PINS} of them here while you page through seeds; the last two pinned seeds are "
                   "interpolated, and every pin joins the loop animation.")
        return
    imgs = pin_images(g, items, psi, class_id)
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.markdown(f"**Pinned** ({len(pins())} of {MAX_PINS})")
        st.download_button("Download pinned", lambda: grid_png(imgs, nrow=min(per_row, len(items)), min_tile=64),
                           file_name="pinned.png", mime="image/png", icon=":material/download:",
                           on_click="ignore", key=f"{K}pins_dl", type="tertiary",
                           help="The pinned samples as one PNG grid, in pin order.")
        st.button("Unpin all", icon=":material/clear_all:", key=f"{K}unpin_all", type="tertiary",
                  on_click=_store, args=([],), help="Remove every pin.")
    cols = st.columns(per_row)
    for i, (p, img) in enumerate(zip(items, imgs)):
        with cols[i % per_row], st.container(gap="xxsmall"):
            show(img, caption=pin_caption(p), px=TILE_PX)
            st.button("Unpin", key=f"{K}unpin_{p['id']}", on_click=unpin, args=(p["id"],), type="tertiary",
                      width="stretch",
                      help="Remove this pin (a seed pinned as it is can be pinned again from the grid).")
