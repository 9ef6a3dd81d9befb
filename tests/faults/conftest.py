"""Fixtures for the fault-injection suite (helpers live in faultkit.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every fault test gets its own dataset cache (subprocesses inherit it through the environment)."""
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "gs-cache"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-step 16 px run with a checkpoint, shared by the CLI and export fault tests of one module."""
    from core.config import TrainConfig
    from core.train import create_run, run_training
    cfg = TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8, steps=2,
                      checkpoint_every=2, eval_every=0, device="cpu", threads=1)
    t = create_run(cfg, tmp_path_factory.mktemp("runs"))
    run_training(t)
    return t.store.path
