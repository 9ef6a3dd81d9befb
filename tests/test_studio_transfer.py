"""Runs page 'Start from': the Train page opens with init_from and the source's network sizes, and Start trains from its weights."""
from __future__ import annotations

from test_studio_app import app, assert_ok, cache_dir, make_run, runs  # noqa: F401 - fixtures

from studio.train_form import W


def test_start_from_opens_the_train_form_with_init_from_and_the_shapes(runs):  # noqa: F811
    src = make_run(runs, "00000-src")
    at = app("pages/runs.py")
    at.button(key="xfer_00000-src").click().run()
    assert_ok(at)
    assert [t.value for t in at.title] == ["Train"]
    ss = at.session_state
    assert ss[W + "init_from"] == str(src) and ss[W + "g_width"] == 8  # the form's widgets show them
    form = ss["gs_cfg"]
    assert form["init_from"] == str(src) and form["g_width"] == 8 and form["latent_dim"] == 16 and form["resolution"] == 16
    assert any("starts from the weights of **00000-src**" in str(m.value) for m in at.toast)
    assert at.text_input(key=W + "init_from").value == str(src)  # drawn on the form, editable
