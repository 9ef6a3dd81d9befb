"""Translation in the studio (#17): the Data page's layout panel (pairs, unmatched names, Use for training
as pix2pix/cyclegan), the Train form's Translation group, and the Translate page."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest
from translate_data import make_paired, make_unpaired

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "studio" / "app.py")


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(root))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield root
    st.cache_resource.clear()


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


def test_paired_folder_shows_layout_pairs_and_trains_as_pix2pix(runs, tmp_path):
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


def test_unpaired_folder_trains_as_cyclegan_and_generate_greys_translate_fields(runs, tmp_path):
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


def test_plain_folder_keeps_the_generic_panel(runs, tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    for i in range(10):
        Image.new("RGB", (16, 16), (20 * i, 50, 90)).save(d / f"{i}.png")
    at = scanned(d)
    assert "Image-to-image translation folder" not in md(at)
    assert [b for b in at.button if b.key == "use"]
