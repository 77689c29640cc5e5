"""Shared helpers for the Python tests: the repository root, its scenes, and the examples
loaded as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENES = REPO / "scenes"
EXAMPLES = REPO / "examples"


def load_example(name: str):
    """examples/<name>.py as a module (registered in sys.modules under `name`)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no example {name}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repo_root() -> Path:
    return REPO
