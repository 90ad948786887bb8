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


def test_cnn_recipe_trains_saves_and_loads(tmp_path):
    out = tmp_path / "cnn.h5"
    result = subprocess.run([sys.executable, "models/train_cnn.py", "--limit", "300", "--epochs", "1",
                             "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.exists() and (tmp_path / "cnn.classes.json").exists()
    from pytest_sketchbench.models.keras_model import KerasModel

    plugin = KerasModel("smoke", {"path": str(out)})
    plugin.import_runtime()
    plugin.load()
    assert plugin.categories == json.loads((REPO / "pytest_sketchbench" / "bundled" / "categories.json").read_text())
