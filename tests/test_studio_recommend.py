"""Train page 'pick for me': after a folder is scanned and chosen, the recommended preset and why, and one click to use it."""
from __future__ import annotations

from test_studio_data import data_page, pngs, runs  # noqa: F401 - fixtures


def test_the_train_page_recommends_a_preset_for_the_chosen_folder(runs, tmp_path):  # noqa: F811
    folder = pngs(tmp_path / "imgs", 12)
    at = data_page(folder)
    at.button(key="use").click().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    tips = [str(i.value) for i in at.info if "Recommended for this data" in str(i.value)]
    assert tips and "fastgan" in tips[0] and "12 colour images" in tips[0]
    at.button(key="use_recommended").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cfg_preset").value == "fastgan"
    assert at.session_state["gs_cfg"]["ada_target"] == 0.6 and at.session_state["gs_cfg"]["arch"] == "fastgan"
    assert at.session_state["gs_cfg"]["resolution"] == 16 and at.session_state["cfg_resolution"] == 16
    assert any("(in use)" in str(c.value) for c in at.caption)  # the tip now says it is what the form holds


def test_no_recommendation_for_a_builtin_dataset(runs):  # noqa: F811
    at = data_page()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert not [i for i in at.info if "Recommended for this data" in str(i.value)]
