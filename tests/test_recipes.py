"""Keep the model recipes from rotting: one tiny epoch on a few hundred real drawings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SHARED = REPO.parent / "shared" / "quickdraw-v2"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SHARED.exists(), reason="../shared/quickdraw-v2 not beside the repo")]


def train_cnn(*args: str) -> None:
    """One epoch of the cnn recipe on 300 drawings."""
    result = subprocess.run([sys.executable, "models/train_cnn.py", "--limit", "300", "--epochs", "1", *args],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory) -> Path:
    """One run of the recipe, shared by the tests that need a trained file."""
    out = tmp_path_factory.mktemp("recipe") / "cnn.h5"
    train_cnn("--out", str(out))
    return out


def test_cnn_recipe_trains_saves_and_loads(trained_cnn):
    out = trained_cnn
    assert out.exists() and (out.parent / "cnn.classes.json").exists()
    from pytest_sketchbench.models.keras_model import KerasModel

    plugin = KerasModel("smoke", {"path": str(out)})
    plugin.import_runtime()
    plugin.load()
    assert plugin.categories == json.loads((REPO / "pytest_sketchbench" / "bundled" / "categories.json").read_text())


def test_cnn_recipe_warm_starts_from_a_trained_file_with_balanced_weights(trained_cnn, tmp_path):
    """``--init`` must start from the file's weights: with a vanishing learning rate they come out unchanged."""
    import keras
    import numpy as np

    def kernels(path) -> list[np.ndarray]:
        """Every layer's kernel, in build order."""
        model = keras.models.load_model(path, compile=False)
        return [w.numpy() for w in model.weights if w.path.endswith("kernel")]

    first, second = trained_cnn, tmp_path / "second.h5"
    train_cnn("--out", str(second), "--init", str(first), "--learning-rate", "1e-9", "--class-weight-power", "1")
    before, after = kernels(first), kernels(second)
    assert len(before) == len(after) == 8  # six convolutions, the dense layer and the output layer
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after, strict=True))
