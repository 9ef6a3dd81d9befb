"""AppTest of the Latent explorer and Export pages: a trained run, a run with no checkpoint yet, no runs."""
from __future__ import annotations

from pathlib import Path

import pytest

st = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "studio" / "pages"
LATENT = str(PAGES / "latent.py")
EXPORT = str(PAGES / "export.py")


def _cfg(**kw):
    from core.config import TrainConfig
    base = dict(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=4,
                checkpoint_every=2, device="cpu", threads=1)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """{"trained": root with one trained run, "fresh": root with a run that has no checkpoint, "empty": no runs}."""
    from core.train import create_run, run_training
    trained = tmp_path_factory.mktemp("trained")
    assert run_training(create_run(_cfg(), trained)) == "finished"
    fresh = tmp_path_factory.mktemp("fresh")
    create_run(_cfg(name="just-started"), fresh)  # the folder exists, no step has run yet
    return {"trained": trained, "fresh": fresh, "empty": tmp_path_factory.mktemp("empty")}


@pytest.fixture
def app(monkeypatch, roots):
    def make(page: str, root: str) -> AppTest:
        monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(roots[root]))
        return AppTest.from_file(page, default_timeout=60)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield make
    st.cache_resource.clear()
    st.cache_data.clear()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.parametrize("page", [LATENT, EXPORT])
def test_empty_runs_root(app, page):
    at = app(page, "empty").run()
    _ok(at)
    assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.parametrize("page", [LATENT, EXPORT])
def test_run_without_checkpoint(app, page):
    at = app(page, "fresh").run()
    _ok(at)
    assert any("no checkpoint yet" in i.value for i in at.info)
    assert not [b for b in at.button if b.label in ("Export", "New seeds")]


def test_latent_explorer(app):
    at = app(LATENT, "trained").run()
    _ok(at)
    assert at.selectbox(key="lat_ckpt").value.startswith("latest")
    pins = [b for b in at.button if b.label == "Pin"]
    assert len(pins) == 16
    first_caption = "seed 0"
    assert any(first_caption == c for c in _image_captions(at))
    # every control explains itself
    for w in [*at.slider, *at.number_input, *at.selectbox, *at.button, *at.radio, *at.multiselect]:
        assert w.help, f"{type(w).__name__} {getattr(w, 'label', '')} has no help text"

    at.button(key="lat_pin_3").click().run()
    at.button(key="lat_pin_5").click().run()
    _ok(at)
    assert (at.number_input(key="lat_seed_a").value, at.number_input(key="lat_seed_b").value) == (3, 5)
    assert at.number_input(key="lat_edit_seed").value == 5
    assert at.button(key="lat_pin_5").label == "Unpin"

    _button(at, "Next page").click().run()
    _ok(at)
    assert at.number_input(key="lat_first_seed").value == 16 and "seed 16" in _image_captions(at)

    at.slider(key="lat_pc_0").set_value(2.0).run()
    at.multiselect(key="lat_dims").set_value([1, 2]).run()
    _ok(at)
    for kind in ("loop", "walk"):
        at.radio(key="lat_anim").set_value(kind).run()
        _ok(at)
    at.segmented_control(key="lat_mode").set_value("lerp").run()
    _ok(at)

    _button(at, "Find").click().run()
    _ok(at)
    assert any("Searched 8,000 of 8,000" in c.value for c in at.caption)
    at.segmented_control(key="lat_nn_space").set_value("d-features").run()
    _button(at, "Find").click().run()
    _ok(at)
    assert any("discriminator-feature space" in c.value for c in at.caption)

    at.slider(key="lat_psi").set_value(0.0).run()
    _ok(at)


def _image_captions(at: AppTest) -> list[str]:
    out = []
    for el in at.get("image"):
        for img in el.proto.imgs:
            out.append(img.caption)
    return out


def test_export_page(app, roots):
    at = app(EXPORT, "trained").run()
    _ok(at)
    for w in [*at.radio, *at.selectbox, *at.button]:
        assert w.help
    for fmt in ("safetensors", "torchscript", "onnx"):
        at.radio(key="exp_format").set_value(fmt).run()
        _button(at, "Export").click().run()
        _ok(at)
        assert any("Exported step 4" in s.value for s in at.success), fmt
        assert any("# Generator:" in m.value for m in at.markdown)
    run = next(p for p in roots["trained"].iterdir() if p.is_dir())
    names = sorted(p.name for p in (run / "exports").iterdir())
    assert any(n.endswith(".safetensors") for n in names) and any(n.endswith(".onnx") for n in names)
    assert any(n.endswith(".torchscript.pt.md") for n in names)


def test_export_page_without_onnx(app, monkeypatch):
    import core.export as E
    monkeypatch.setattr(E, "onnx_status", lambda: (False, "ONNX export needs the 'onnx' package: pip install onnx"))
    at = app(EXPORT, "trained").run()
    at.radio(key="exp_format").set_value("onnx").run()
    assert not at.exception
    assert any("pip install onnx" in e.value for e in at.error)
    assert _button(at, "Export").disabled
