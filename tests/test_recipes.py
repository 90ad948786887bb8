"""Keep the model recipes from rotting: one tiny epoch on a few hundred real drawings."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_cnn_recipe_trains_saves_loads_and_warm_starts_with_balanced_weights(tmp_path):
    """One run of the recipe (an epoch on 300 drawings) as its second cosine cycle, ``--init`` from the shipped
    cnn.h5, with a vanishing learning rate: it builds, trains and saves a file that the Keras plugin loads with the
    bundled category order, and every kernel comes out the shipped file's own — a recipe that ignored ``--init``
    would train from scratch (the only difference between the two paths is that copy of the weights)."""
    import keras
    import numpy as np

    from pytest_sketchbench.models.keras_model import KerasModel

    def kernels(path) -> list[np.ndarray]:
        """Every layer's kernel, in build order."""
        model = keras.models.load_model(path, compile=False)
        return [w.numpy() for w in model.weights if w.path.endswith("kernel")]

    shipped, out = REPO / "models" / "cnn.h5", tmp_path / "cnn.h5"
    train_cnn("--out", str(out), "--init", str(shipped), "--width", "1.5", "--dropout", "0.3", "0.2",  # its shape
              "--learning-rate", "1e-9", "--class-weight-power", "1")
    assert out.exists() and (out.parent / "cnn.classes.json").exists()
    plugin = KerasModel("smoke", {"path": str(out)})
    plugin.import_runtime()
    plugin.load()
    assert plugin.categories == json.loads((REPO / "pytest_sketchbench" / "bundled" / "categories.json").read_text())
    before, after = kernels(shipped), kernels(out)
    assert len(before) == len(after) == 8  # six convolutions, the dense layer and the output layer
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(before, after, strict=True))
