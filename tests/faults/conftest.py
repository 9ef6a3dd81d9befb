"""Fixtures for the fault-injection suite (helpers live in faultkit.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every fault test gets its own dataset cache (subprocesses inherit it through the environment)."""
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "gs-cache"))
