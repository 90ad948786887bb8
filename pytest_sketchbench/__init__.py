"""pytest-sketchbench: sketch-classifier benchmarks as pytest tests.

The public names are resolved on first use: pytest imports this package for every run in an
environment where it is installed, so importing it must cost (almost) nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ModelInfo", "ModelPlugin", "SketchBenchError", "register_model"]
__version__ = "0.1.0"

_LAZY = {
    "SketchBenchError": "pytest_sketchbench.errors",
    "ModelInfo": "pytest_sketchbench.models.base",
    "ModelPlugin": "pytest_sketchbench.models.base",
    "register_model": "pytest_sketchbench.models.registry",
}

if TYPE_CHECKING:
    from pytest_sketchbench.errors import SketchBenchError
    from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
    from pytest_sketchbench.models.registry import register_model


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pytest_sketchbench' has no attribute {name!r}")
