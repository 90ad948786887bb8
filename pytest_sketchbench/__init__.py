"""pytest-sketchbench: sketch-classifier benchmarks as pytest tests."""

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
from pytest_sketchbench.models.registry import register_model

__all__ = ["ModelInfo", "ModelPlugin", "SketchBenchError", "register_model"]
__version__ = "0.1.0"
