"""Latent explorer for stylegan2: truncation in w, interpolation in w, the style-mixing grid (core and AppTest)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import latent as L
from core.generator import generate_seeds, layer_groups, load_generator, resolve_checkpoint

PAGE = str(Path(__file__).resolve().parent.parent / "studio" / "pages" / "latent.py")


def _cfg(**kw):
    from core.config import TrainConfig
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=3,
                checkpoint_every=3, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """{"style": a root with a tiny stylegan2 run, "dcgan": one with a tiny dcgan run}."""
    from core.train import create_run, run_training
    out = {}
    for name, kw in (("style", dict(arch="stylegan2", mapping_layers=2)), ("dcgan", {})):
        root = tmp_path_factory.mktemp(name)
        assert run_training(create_run(_cfg(**kw), root)) == "finished"
        out[name] = root
    return out


def _gen(root: Path):
    run = next(p for p in root.iterdir() if p.is_dir())
    return load_generator(resolve_checkpoint(run))


def test_explorer_truncation_is_in_w_for_stylegan2(roots):
    g = _gen(roots["style"])
    seeds = [0, 1, 2]
    # The grid, the CLI and the sliders agree: psi pulls w toward w_avg, z itself is not truncated.
    assert torch.allclose(L.sample_seeds(g, seeds, 0.5), generate_seeds(g, seeds, 0.5), atol=1e-6)
    z = L.explorer_z(g, seeds, 0.5)
    assert torch.equal(z, L.seeds_to_z(seeds, g.latent_dim, 1.0))
    assert torch.allclose(L.render(g, z, psi=0.5), generate_seeds(g, seeds, 0.5), atol=1e-6)
    w = L.to_w(g, z, 0.0)
    assert torch.allclose(w, g.G.w_avg.expand_as(w), atol=1e-6)
    assert "in w (toward the average style" in L.truncation_note(g)
    gz = _gen(roots["dcgan"])
    assert "in z" in L.truncation_note(gz)
    assert torch.equal(L.explorer_z(gz, seeds, 0.5), L.seeds_to_z(seeds, gz.latent_dim, 0.5))


def test_w_interpolation_ends_at_the_seeds(roots):
    g = _gen(roots["style"])
    z = L.explorer_z(g, [3, 4], 0.7)
    w = L.to_w(g, z, 0.7)
    path = L.interpolate(w[0], w[1], 5, "lerp")
    assert torch.allclose(path[2], (w[0] + w[1]) / 2, atol=1e-6)
    frames = L.render_w(g, path)
    ends = generate_seeds(g, [3, 4], 0.7)
    assert torch.allclose(frames[0], ends[0], atol=1e-5) and torch.allclose(frames[-1], ends[1], atol=1e-5)


def test_mixing_grid_layout(roots):
    g = _gen(roots["style"])
    src, sty = [0, 1, 2], [10, 11]
    grid = L.mixing_grid(g, src, sty, "coarse", psi=1.0)
    assert grid.shape == (4 * 3, g.channels, 16, 16)
    assert torch.all(grid[0] == 1)                           # blank corner
    plain_sty, plain_src = generate_seeds(g, sty), generate_seeds(g, src)
    assert torch.allclose(grid[1:3], plain_sty, atol=1e-5)   # header row: the style seeds unmixed
    assert torch.allclose(grid[3::3], plain_src, atol=1e-5)  # first column: the sources unmixed
    # Tile (i, j) is source i with style j's coarse w: the same as building the ws by hand.
    ws_a, ws_b = L.to_w(g, L.explorer_z(g, [1])), L.to_w(g, L.explorer_z(g, [11]))
    idx = layer_groups(g.G)["coarse"]
    ws_a[:, idx] = ws_b[:, idx]
    assert torch.allclose(grid[2 * 3 + 2], L.render_w(g, ws_a)[0], atol=1e-5)
    assert not torch.allclose(grid[2 * 3 + 2], plain_src[1], atol=1e-4)  # the mix changed something
    with pytest.raises(ValueError, match="valid: coarse, middle, fine"):
        L.mixing_grid(g, src, sty, "everything")
    with pytest.raises(ValueError, match="arch=stylegan2"):
        L.mixing_grid(_gen(roots["dcgan"]), src, sty)


# ------------------------------------------------------------------ the page
st = pytest.importorskip("streamlit")


@pytest.fixture
def app(monkeypatch, roots):
    from streamlit.testing.v1 import AppTest

    def make(root: str):
        monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(roots[root]))
        return AppTest.from_file(PAGE, default_timeout=60)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield make
    st.cache_resource.clear()
    st.cache_data.clear()


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_page_mixing_grid_for_stylegan2(app):
    at = app("style").run()
    _ok(at)
    assert any("truncation in w (toward the average style" in c.value for c in at.caption)
    assert at.segmented_control(key="lat_mode").value == "w"
    caps = _captions(at)
    assert "lerp in w from seed 0 to seed 1 in 8 steps" in caps
    assert {"style 100", "style 103", "source 0", "source 3"} <= set(caps)
    assert any(b.label == "Download mixing grid" for b in at.get("download_button"))
    for w in [*at.radio, *at.number_input, *at.select_slider, *at.slider]:
        assert w.help, f"{type(w).__name__} {w.label} has no help text"
    for group in ("middle", "fine"):
        at.radio(key="lat_mix_group").set_value(group).run()
        _ok(at)
    at.select_slider(key="lat_mix_rows").set_value(2).run()
    at.slider(key="lat_psi").set_value(0.5).run()
    at.segmented_control(key="lat_mode").set_value("slerp").run()
    at.radio(key="lat_anim").set_value("loop").run()
    _ok(at)
    caps = _captions(at)
    assert "source 1" in caps and "source 2" not in caps
    assert "slerp in z from seed 0 to seed 1 in 8 steps" in caps
    at.segmented_control(key="lat_mode").set_value("w").run()  # the loop through pins, then the walk, in w
    _ok(at)
    at.radio(key="lat_anim").set_value("walk").run()
    _ok(at)


def test_page_explains_missing_grid_for_dcgan(app):
    at = app("dcgan").run()
    _ok(at)
    assert any("truncation in z" in c.value for c in at.caption)
    assert any("Style mixing needs a style-based generator" in i.value for i in at.info)
    assert at.segmented_control(key="lat_mode").value == "slerp"


def test_model_card_says_where_truncation_acts(roots, tmp_path):
    from core.export.card import model_card
    f = tmp_path / "g.safetensors"
    f.write_bytes(b"")
    style = model_card(_gen(roots["style"]), "safetensors", [f])
    assert "truncation acts in w" in style and "w_avg" in style and "scale z by psi" not in style
    plain = model_card(_gen(roots["dcgan"]), "safetensors", [f])
    assert "truncation acts in z" in plain and "w_avg" not in plain
