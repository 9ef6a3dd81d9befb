"""Translation in the studio (#17): the Data page's layout panel (pairs, unmatched names, Use for training
as pix2pix/cyclegan), the Train form's Translation group, and the Translate page."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_studio_data import runs  # noqa: F401 - the runs-root fixture (env, cleared cache_resource)
from translate_data import make_paired, make_unpaired

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "studio" / "app.py")


def scanned(folder: Path) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.segmented_control(key="data_source").set_value("Image folder").run()
    at.text_input(key="data_folder").input(str(folder))
    next(b for b in at.button if b.label == "Scan").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def md(at: AppTest) -> str:
    return " ".join(str(m.value) for m in (*at.markdown, *at.caption))


def test_paired_folder_shows_layout_pairs_and_trains_as_pix2pix(runs, tmp_path):  # noqa: F811 - the imported fixture
    folder = make_paired(tmp_path / "edges2shapes", n=10, size=16)
    Image.new("RGB", (16, 16)).save(folder / "B" / "stray.png")
    at = scanned(folder)
    text = md(at)
    assert "Image-to-image translation folder" in text and "10 pairs" in text and "pix2pix" in text
    assert "no same-named twin" in text  # the layout's note on the unmatched file
    assert any("Unmatched names (0 in A, 1 in B)" in e.label for e in at.expander)
    assert len(at.get("image")) >= 4  # a preview of pairs, A | B (and the real-images grid)
    assert not [b for b in at.button if b.key == "use"]  # the generic Use is replaced, not doubled
    at.button(key="translate_use").click().run()
    assert not at.exception
    assert at.session_state["gs_dataset"] == str(folder.resolve())
    assert at.session_state["gs_cfg"]["task"] == "pix2pix" and at.session_state["gs_preset"] == "pix2pix"
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="cfg_task").value == "pix2pix"
    assert at.selectbox(key="cfg_preset").value == "pix2pix"
    assert at.text_input(key="cfg_data").value == str(folder.resolve())
    assert any(e.label == "Translation" for e in at.expander)
    assert at.number_input(key="cfg_latent_dim").disabled and not at.number_input(key="cfg_l1_weight").disabled
    assert not at.error, [e.value for e in at.error]  # the form validates: Start is possible
    assert not at.button(key="start").disabled


def test_unpaired_folder_trains_as_cyclegan_and_generate_greys_translate_fields(runs, tmp_path):  # noqa: F811 - the imported fixture
    folder = make_unpaired(tmp_path / "horse2zebra", n=6, size=16, names=("trainA", "trainB"))
    at = scanned(folder)
    assert "unpaired, 6 images in A, 6 in B" in md(at) and "cyclegan" in md(at)
    at.button(key="translate_use").click().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="cfg_task").value == "cyclegan"
    assert at.selectbox(key="cfg_loss").value == "lsgan"
    at.selectbox(key="cfg_task").set_value("generate").run()
    assert at.number_input(key="cfg_cycle_weight").disabled and not at.number_input(key="cfg_latent_dim").disabled


def test_plain_folder_keeps_the_generic_panel(runs, tmp_path):  # noqa: F811 - the imported fixture
    d = tmp_path / "plain"
    d.mkdir()
    for i in range(10):
        Image.new("RGB", (16, 16), (20 * i, 50, 90)).save(d / f"{i}.png")
    at = scanned(d)
    assert "Image-to-image translation folder" not in md(at)
    assert [b for b in at.button if b.key == "use"]


# ------------------------------------------------------------------ the Translate page
def translate_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "studio" / "pages" / "translate.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory) -> Path:
    """A tiny trained pix2pix run (16 px, widths 8, 6 steps, one thread), shared by the page tests."""
    from core.config import preset
    from core.train import create_run, run_training

    tmp = tmp_path_factory.mktemp("p2p")
    data = make_paired(tmp / "edges2shapes", n=10, size=20)
    t = create_run(preset("pix2pix", data=str(data), steps=6, resolution=16, g_width=8, d_width=8, batch_size=4,
                          device="cpu", threads=1, log_every=3, sample_every=3, checkpoint_every=3, eval_every=0),
                   tmp / "runs")
    assert run_training(t) == "finished"
    return tmp / "runs"


def test_translate_page_with_no_runs_and_no_translation_runs(runs, tmp_path):  # noqa: F811 - the imported fixture
    at = translate_page()
    assert any("No runs yet" in str(i.value) for i in at.info)
    from core.config import TrainConfig
    from core.train import create_run, run_training

    t = create_run(TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, batch_size=8, steps=2,
                               device="cpu", threads=1, log_every=1, sample_every=2, checkpoint_every=2), runs)
    assert run_training(t) == "finished"
    at = translate_page()
    assert any("translates images" in str(i.value) for i in at.info)


def test_translate_page_translates_a_held_out_input_and_an_upload(pix2pix_run, monkeypatch):
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(pix2pix_run))
    st.cache_resource.clear()
    at = translate_page()
    assert not at.info, [i.value for i in at.info]
    assert at.selectbox(key="tr_held").options  # the run's held-out items (10 pairs: 2 held out)
    captions = [str(c.value) for c in at.caption]
    assert any("Direction: **AtoB**" in c for c in captions)
    imgs = at.get("image")
    assert len(imgs) == 3  # input, output, target
    assert len(at.get("download_button")) == 1
    assert any("Mean |output − target|" in c for c in captions)
    # An upload of any size: input and output, no target, and a download
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, format="PNG")
    at.segmented_control(key="tr_source").set_value("Upload an image").run()
    at.file_uploader(key="tr_upload").set_value(("red.png", buf.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("image")) == 2 and len(at.get("download_button")) == 1


def test_the_page_translates_as_the_cli_does(pix2pix_run, tmp_path):
    """Same file, same pixels: the page's decode + translate against core's translate_files."""
    from core.translate.cli import load_translator, translate_files
    from studio.translate_images import decode, translate

    run = next(p for p in pix2pix_run.iterdir() if p.is_dir())
    G, cfg, ch = load_translator(run)
    src = tmp_path / "in.png"
    Image.open(next((run.parent.parent / "edges2shapes" / "A").iterdir())).resize((37, 23)).save(src)
    (out,) = translate_files(G, [src], tmp_path / "out", cfg.resolution, ch)
    ours = translate(G, decode(src, cfg.resolution, ch))
    cli = np.asarray(Image.open(out))
    assert np.array_equal(ours, cli[None] if cli.ndim == 2 else cli.transpose(2, 0, 1))


def test_a_cyclegan_run_translates_both_ways(tmp_path, monkeypatch):
    from core.config import preset
    from core.train import create_run, run_training

    data = make_unpaired(tmp_path / "horse2zebra", n=6, size=16)
    t = create_run(preset("cyclegan", data=str(data), steps=3, resolution=16, g_width=8, d_width=8, batch_size=2,
                          device="cpu", threads=1, log_every=3, sample_every=3, checkpoint_every=3), tmp_path / "runs")
    assert run_training(t) == "finished"
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    at = translate_page()
    assert at.segmented_control(key="tr_direction").value == "AtoB"
    assert any("A_" in o for o in at.selectbox(key="tr_held").options)  # inputs from A/
    assert len(at.get("image")) == 2  # unpaired: input and output, no target
    at.segmented_control(key="tr_direction").set_value("BtoA").run()
    assert not at.exception, [e.value for e in at.exception]
    assert all(o.startswith("B_") for o in at.selectbox(key="tr_held").options)
    assert len(at.get("image")) == 2 and len(at.get("download_button")) == 1
    # The training folder moved away: the page says so and still offers an upload, never a traceback
    import shutil

    shutil.rmtree(data)
    st.cache_data.clear()
    at = translate_page()
    assert any("held-out inputs are not available" in str(e.value) for e in at.error)
    at.segmented_control(key="tr_source").set_value("Upload an image").run()
    assert not at.exception and at.file_uploader(key="tr_upload")


def test_field_use_separates_generate_and_translation_fields():
    from core.field_use import TRANSLATE_ONLY, unused_fields

    gen = unused_fields({})
    assert set(TRANSLATE_ONLY) <= set(gen) and "latent_dim" not in gen and "ema" not in gen
    p2p, cyc = unused_fields({"task": "pix2pix"}), unused_fields({"task": "cyclegan", "loss": "lsgan"})
    for u in (p2p, cyc):
        assert {"latent_dim", "ema", "mapping_layers"} <= set(u) and "direction" not in u
    assert "l1_weight" not in p2p and {"cycle_weight", "identity_weight", "pool_size", "lr_decay_start"} <= set(p2p)
    assert "l1_weight" in cyc and not {"cycle_weight", "identity_weight", "pool_size", "lr_decay_start"} & set(cyc)


def test_the_export_page_exports_a_translator(pix2pix_run, monkeypatch):
    """A pix2pix run on the Export page: translator wording, no TorchScript (translators refuse it), and
    a safetensors bundle written with its parity-checked standalone translate.py."""
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(pix2pix_run))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "studio" / "pages" / "export.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.radio(key="exp_format").options) == ["safetensors bundle", "torch.export (.pt2)", "ONNX"]
    assert any("pix2pix translator" in str(c.value) for c in at.caption)
    next(b for b in at.button if b.label == "Export").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    assert any(str(s.value).startswith("Exported") for s in at.success)
    exported = sorted(p.name for p in (next(pix2pix_run.iterdir()) / "exports").iterdir())
    assert "translate.py" in exported and any(n.endswith(".safetensors") for n in exported), exported
