"""AppTest of the Latent explorer's details (#20 item 12): random and sequential seed pages, a pinned strip that
survives paging, pinning and downloading an edit, file names for nearest neighbours, nearest-neighbour drawing."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

st = pytest.importorskip("streamlit")
from image_folder import make_image_folder  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

LATENT = str(Path(__file__).resolve().parent.parent / "studio" / "pages" / "latent.py")


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory):
    """A runs root with one tiny run trained (4 steps) on a folder of 12 PNGs in two subfolders."""
    from core.config import TrainConfig
    from core.train import create_run, run_training
    data = make_image_folder(tmp_path_factory.mktemp("data") / "pics", n=12, size=16, classes=("cats", "dogs"))
    root = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(data=str(data), resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=4, steps=4,
                      checkpoint_every=2, device="cpu", threads=1)
    assert run_training(create_run(cfg, root)) == "finished"
    return root


@pytest.fixture
def at(monkeypatch, folder_root):
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(folder_root))
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(LATENT, default_timeout=60).run()
    _ok(app)
    yield app
    st.cache_resource.clear()
    st.cache_data.clear()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def _downloads(at: AppTest) -> dict[str, object]:
    return {el.proto.label: el.proto for el in at.get("download_button")}


def _grid_seeds(at: AppTest) -> list[int]:
    return [int(c.split()[1]) for c in _captions(at) if c.startswith("seed ") and c.split()[1].isdigit()][:16]


def test_new_seeds_rolls_a_random_page_and_next_page_pages(at):
    at.button(key="lat_random").click().run()
    _ok(at)
    first = at.number_input(key="lat_first_seed").value
    assert first not in (0, 16)                      # the dice no longer just pages
    assert _grid_seeds(at) == list(range(first, first + 16))  # seed numbers shown, consecutive: reproducible
    at.button(key="lat_next").click().run()
    assert at.number_input(key="lat_first_seed").value == first + 16
    at.button(key="lat_prev").click().run()
    _ok(at)
    assert at.number_input(key="lat_first_seed").value == first
    assert {"Next page", "Previous page", "New seeds"} <= {b.label for b in at.button}


def test_pins_stay_as_thumbnails_across_pages_and_can_be_unpinned(at):
    at.button(key="lat_pin_3").click().run()
    at.button(key="lat_next").click().run()         # seed 3 is no longer in the grid
    _ok(at)
    assert 3 not in _grid_seeds(at)
    shown = _captions(at).count("seed 3")          # its thumbnail in the pinned strip (and the Edit tab's seed)
    assert shown >= 2
    at.button(key="lat_unpin_3").click().run()
    _ok(at)
    assert _captions(at).count("seed 3") == shown - 1 and not at.session_state["lat_pinned"]
    assert not [b for b in at.button if b.key == "lat_unpin_3"]


def test_an_edit_can_be_pinned_exactly_and_downloaded(at):
    from core import latent as L
    from studio.latent_cache import load_cached
    from studio.latent_pins import pin_images
    at.slider(key="lat_pc_0").set_value(2.0).run()
    dl = _downloads(at)["Download PNG"]
    assert "16×16" in dl.help                        # the generator's full resolution, not a thumbnail
    at.button(key="lat_pin_edit").click().run()
    _ok(at)
    pin = at.session_state["lat_pinned"][-1]
    assert pin["seed"] == 0 and len(pin["z"]) == 16
    assert any(c.startswith("seed 0 · edited") for c in _captions(at))
    # the stored latent is the edit itself: regenerating gives the very image that was edited
    g = _loaded(load_cached)
    z = L.explorer_z(g, [0], 1.0)[0]
    dirs = L.principal_directions(g, k=6, n_samples=512)
    coeffs = [2.0, 0, 0, 0, 0, 0]
    edited = L.edit_directions(z, dirs, coeffs)      # untouched z[d] sliders leave z as the seed made it
    assert torch.equal(torch.tensor(pin["z"]), edited)
    assert torch.equal(pin_images(g, [pin], 1.0, None), L.render(g, edited, None, 0, psi=1.0))
    # an edit pinned on a generator with another z size is kept but not drawn (no shape error here)
    at.session_state["lat_pinned"] = [*at.session_state["lat_pinned"], {**pin, "id": "x", "z": [0.0] * 8}]
    at.radio(key="lat_anim").set_value("loop").run()
    _ok(at)
    assert any("1 pinned edit of another generator" in c.value for c in at.caption)


def _loaded(load_cached):
    import os

    from core.runs import list_runs
    root = Path(os.environ["GAN_STUDIO_RUNS_DIR"])
    info = list_runs(root)[0]
    ckpt = sorted(info.path.glob("checkpoints/*.pt"))[-1]
    return load_cached(str(ckpt), ckpt.stat().st_mtime)


def test_nearest_neighbours_are_named_by_file(at):
    next(b for b in at.button if b.label == "Find").click().run()
    _ok(at)
    import re
    names = [m for md in at.markdown for m in re.findall(r"title='((?:cats|dogs)/img_\d+\.png) · distance", md.value)]
    assert len(names) == 8, [md.value for md in at.markdown]  # relative to the data folder: class subfolder/file
    assert all(f">{n.split('/')[1]}</div>" in " ".join(md.value for md in at.markdown) for n in names)
    assert not any(c.startswith("#") for c in _captions(at))
    from types import SimpleNamespace

    from core.latent import image_names
    assert image_names(SimpleNamespace(source="shapes", report=None), [3]) == ["shapes #3"]


def test_every_image_is_drawn_nearest_neighbour_and_downloadable(at):
    from core import latent as L
    html = " ".join(el.proto.body for el in at.get("html"))
    assert "image-rendering: pixelated" in html
    assert {"Download grid", "Download strip", "Download GIF", "Download PNG"} <= set(_downloads(at))
    from PIL import Image
    frames = torch.rand(3, 3, 8, 8) * 2 - 1
    img = np.asarray(Image.open(io.BytesIO(L.strip_png(frames, min_tile=64))).convert("RGB"))
    assert img.shape[0] >= 64
    src = {tuple(c) for f in frames for c in np.asarray(Image.open(io.BytesIO(L.image_png(f, 0)))
                                                        .convert("RGB")).reshape(-1, 3)}
    out = {tuple(c) for c in img.reshape(-1, 3)}
    assert len(out - src) <= 1  # the frames' own colours (and the padding): upscaled, never blended


def test_pca_sliders_are_explained_in_plain_language(at):
    caps = [c for c in at.caption if "Directions of greatest variation" in c.value]
    assert caps and caps[0].value == "Directions of greatest variation in the generator's early features (PCA)"
    assert "principal component analysis" in caps[0].proto.help
    assert not any("activations" in c.value for c in at.caption)
