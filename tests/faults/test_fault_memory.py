"""#19 finding 5: a step that cannot fit in free memory is refused before the run folder exists, naming batch_size and a size that fits."""
from __future__ import annotations

import pytest
import torch

from core.config import ConfigError, TrainConfig
from core.train import memory_check
from core.train.memory_check import check_fits, free_memory_bytes


def big_cfg(**kw) -> TrainConfig:
    return TrainConfig(data="shapes", resolution=64, batch_size=256, g_width=8, d_width=8, latent_dim=16,
                       device="cpu", threads=1, **kw).validate()


def test_too_little_memory_names_batch_size_and_a_batch_that_fits():
    with pytest.raises(ConfigError) as e:
        check_fits(big_cfg(), 3, 0, torch.device("cpu"), free=64 * 1024**2)  # a machine with 64 MB free
    import re
    msg = str(e.value)
    assert e.value.field == "batch_size" and "64 px" in msg and "resolution=32" in msg
    fit = int(re.search(r"Try batch_size=(\d+)", msg).group(1))
    assert 2 <= fit < 256
    check_fits(big_cfg().replace(batch_size=fit), 3, 0, torch.device("cpu"), free=64 * 1024**2)  # the advice fits


def test_enough_memory_and_small_steps_pass_quickly(monkeypatch):
    check_fits(big_cfg(), 3, 0, torch.device("cpu"), free=64 * 1024**3)
    called = []
    monkeypatch.setattr("core.estimate.estimate", lambda *a, **k: called.append(1))
    check_fits(big_cfg().replace(resolution=32, batch_size=8), 3, 0, torch.device("cpu"), free=1)
    assert not called  # 8 x 32^2 pixels cannot exhaust a machine: not even counted


def test_create_run_refuses_before_a_folder_exists(tmp_path, monkeypatch):
    from core.train import create_run
    monkeypatch.setattr(memory_check, "free_memory_bytes", lambda device: 64 * 1024**2)
    runs = tmp_path / "runs"
    with pytest.raises(ConfigError, match="batch_size"):
        create_run(big_cfg(), runs)
    assert not runs.exists() or not any(runs.iterdir())


def test_free_memory_is_read_on_this_machine():
    free = free_memory_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_the_train_page_warns_before_start(monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GAN_STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(memory_check, "free_memory_bytes", lambda device: 1024**2)  # 1 MB free
    st.cache_resource.clear()
    from pathlib import Path
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "studio" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py").run()
    for _ in range(30):  # the estimate is computed in the background of the page
        if any("Start will refuse it" in str(w.value) for w in at.warning):
            break
        at.run()
    assert any("Start will refuse it" in str(w.value) and "Batch size" in str(w.value) for w in at.warning)
    st.cache_resource.clear()


def test_evaluate_refuses_an_n_that_cannot_fit_and_names_one_that_does(tmp_path, monkeypatch):
    """#19 finding 10: Evaluate's images are held at once; 50,000 at 256 px is ~125 GB. Refused by name, at once."""
    import re

    from core import memory
    from core.metrics import evaluate
    from core.train import create_run, run_training
    t = create_run(TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                               steps=1, eval_every=0, device="cpu", threads=1), tmp_path / "runs")
    run_training(t)
    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: 10 * 1024**2)  # 10 MB free
    with pytest.raises(ValueError, match="n=50,000") as e:
        evaluate(t.store.path, n=50_000, metrics="swd")
    fit = int(re.search(r"use n <= ([\d,]+)", str(e.value)).group(1).replace(",", ""))
    assert 4 <= fit < 50_000
    assert evaluate(t.store.path, n=min(fit, 64), metrics="swd")["results"]  # the advice works
