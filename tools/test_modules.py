"""Our tests' helper modules (the browser driver, fixture data), loaded by file path for the tools.

By path, not ``import tests...``: torch-fidelity installs a top-level ``tests`` package into
site-packages, and a regular package there wins over our ``tests/`` folder (a namespace package).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent.parent / "tests"


def load(relative: str) -> ModuleType:
    """Import ``tests/<relative>`` (e.g. ``e2e/driver.py``) under a private module name, once."""
    name = "gan_studio_tests_" + relative.removesuffix(".py").replace("/", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTS / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module
