"""core.estimate for every preset in core.config.PRESETS (#20 item 4: wgan-gp showed a raw PyTorch
error), its spread of timed steps, and which limit (steps or minutes) ends a run."""
from __future__ import annotations

import pytest

from core import estimate as est_mod
from core.config import PRESETS, ConfigError, TrainConfig, preset
from core.estimate import Estimate, estimate, run_length

TINY = dict(resolution=16, batch_size=4, g_width=8, d_width=8, latent_dim=16, device="cpu", threads=1)


def _tiny(name: str) -> TrainConfig:
    """The preset at a tiny size; a preset that cannot be built that small keeps its own shape."""
    try:
        return preset(name, **TINY)
    except ConfigError:
        return preset(name, batch_size=2, device="cpu", threads=1)


@pytest.mark.parametrize("name", list(PRESETS))  # read at collection: presets added later are covered too
def test_every_preset_has_an_estimate(name, monkeypatch):
    monkeypatch.setattr(est_mod, "TIME_BUDGET_S", 0.3)  # the minimum number of timed steps still runs
    cfg = _tiny(name)
    e = estimate(cfg, channels=3, num_classes=4, threads=1)
    assert not [n for n in e.notes if n.startswith("could not time")], e.notes
    assert e.sec_source == "measured" and e.sec_per_step > 0
    assert e.flops_per_step > 0 and e.params_g > 0 and e.params_d > 0 and e.activations_bytes > 0
    lo, hi = e.sec_range
    assert 0 < lo <= e.sec_per_step <= hi


def _est(per: float, lo: float, hi: float) -> Estimate:
    return Estimate(device="cpu", sec_per_step=per, sec_range=(lo, hi), sec_source="measured")


def test_run_length_names_the_limit_that_ends_the_run():
    est = _est(1.0, 0.8, 1.5)
    r = run_length(est, TrainConfig(steps=600))
    assert r["limit"] == "steps" and r["seconds"] == (480.0, 600.0, 900.0) and r["steps"] == 600
    r = run_length(est, TrainConfig(steps=600, minutes=5))  # 300 s: even the fastest step needs 480 s
    assert r["limit"] == "minutes" and r["seconds"] == (300.0, 300.0, 300.0) and r["steps"] == 300
    r = run_length(est, TrainConfig(steps=600, minutes=12))  # 720 s: inside 480-900 s
    assert r["limit"] == "either" and r["seconds"] == (480.0, 600.0, 720.0) and r["steps"] == 600
    r = run_length(est, TrainConfig(steps=600, minutes=20))
    assert r["limit"] == "steps"


def test_run_length_of_an_untimed_estimate_is_a_point():
    est = Estimate(device="cpu", sec_per_step=0.5, sec_source="rough, from FLOPs")
    assert run_length(est, TrainConfig(steps=100))["seconds"] == (50.0, 50.0, 50.0)


def test_train_page_shows_the_spread_and_the_limit_that_ends_the_run(monkeypatch, tmp_path):
    """The Estimate panel, for the wgan-gp preset: no raw error, a range, and which limit ends the run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    from test_studio_app import APP

    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(est_mod, "TIME_BUDGET_S", 0.3)
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="cfg_preset").set_value("wgan-gp").run()
    at.selectbox(key="cfg_resolution").set_value(16)
    for k, v in dict(cfg_g_width=8, cfg_d_width=8, cfg_batch_size=4, cfg_steps=100000).items():
        at.number_input(key=k).set_value(v)
    at.run()  # one rerun for all of them: one estimate
    assert not at.exception, [e.value for e in at.exception]
    captions = [c.value for c in at.caption]
    assert not any("No estimate" in c for c in captions), captions
    per = next(m for m in at.metric if m.label == "Time per step")
    assert " – " in per.proto.delta  # fastest – slowest timed step
    assert any("ends at step 100,000" in c for c in captions), captions
    at.number_input(key="cfg_minutes").set_value(1.0).run()
    assert any("1-minute budget" in c.value for c in at.caption), [c.value for c in at.caption]
    assert any("Automatic settings here" in c.value and "→" in c.value for c in at.caption)  # e.g. precision
    st.cache_data.clear()


def test_automatic_settings_say_what_they_resolve_to():
    from core.resolved import resolved_autos

    r = resolved_autos(TrainConfig(device="cpu", threads=0, d_norm="auto", loss="wgan-gp", r1_auto=True,
                                   resolution=32, batch_size=32))
    assert r["d_norm"] == "none" and r["threads"].split()[0].isdigit()
    assert r["r1_weight"] == f"{0.0002 * 32 ** 2 / 32:.3g}"
    assert "device" not in r  # set by hand: nothing to resolve
    r = resolved_autos(TrainConfig(device="auto", precision="fp32", threads=2, d_norm="layer"))
    assert set(r) == {"device"}
