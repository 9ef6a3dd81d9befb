"""Shared fixtures: an isolated dataset cache, tiny configs and tiny image folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from image_folder import make_image_folder  # noqa: F401 - used by fixtures below, and by test files

# Never touch the user's real cache, and keep CPU tests single-threaded and steady.
os.environ.setdefault("GAN_STUDIO_CACHE", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "gan-cache"))


@pytest.fixture
def tiny_cfg():
    """A config that trains in milliseconds per step on a CPU."""
    from core.config import TrainConfig
    return TrainConfig(data="shapes", resolution=16, g_width=8, d_width=8, latent_dim=16, batch_size=8,
                       steps=6, log_every=2, sample_every=3, checkpoint_every=3, device="cpu", threads=1, ema=0.9)


@pytest.fixture
def image_folder(tmp_path):
    return make_image_folder(tmp_path / "images")
