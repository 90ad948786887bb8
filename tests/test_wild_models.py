"""Models from the wild: published Quick, Draw! models (TF.js layers, Keras 2 ``.h5``, TFLite) run from a config
table alone, Keras 2 ``.h5`` files read by tf-keras, and layers that carry code refused before Keras sees them."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest

from conftest import REPO, assert_ran, run_options
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.registry import RUNTIMES, ModelSpec

pytestmark = pytest.mark.slow
WILD = REPO / "tests" / "data" / "wild"


def _load(runtime: str, path, categories=None):
    plugin = ModelSpec("m", RUNTIMES[runtime].plugin, {"path": str(path)}).create()
    plugin.import_runtime()
    plugin.load()
    if categories is not None:
        plugin.categories = categories
    return plugin


def test_a_published_keras2_tfjs_layers_model_runs_from_a_config_table_alone(pytester):
    _installed("tf_keras")
    folder = WILD / "doodlejs"
    pytester.makefile(".toml", thresholds=f'[models.doodlejs]\npath = "{folder / "model.json"}"\n'
                                          f'categories = "{folder / "class_names.txt"}"\n')
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest_subprocess(*run_options(None), "--sketch-models=doodlejs", "--sketch-json=r.json")
    assert_ran(result, skipped=1, measured=4)  # no limits in the table: measured, not gated
    result.stdout.fnmatch_lines(["*a Keras 2.2.4-tf config, rebuilt with tf-keras 2.*",
                                 "*closed-set*322 more model classes ignored*open-set acc 0.6*"])
    record = json.loads((pytester.path / "r.json").read_text())["model_results"]["doodlejs"]
    assert record["model_info"]["runtime"] == "tfjs-layers (tf-keras)"
    assert record["model_info"]["extra"]["keras_version"] == "2.2.4-tf"
    assert abs(record["accuracy_results"]["accuracy"] - 0.896) < 0.005  # the figure in tests/data/wild/README.md


# name: (runtime as the record says, closed-set and open-set accuracy on the bundled split, as in
# tests/data/wild/README.md)
PUBLISHED = {"doodle-y": ("tensorflow (tf-keras)", 0.940, 0.902),
             "acc93-tflite": ("litert", 0.926, 0.813),
             "draw-it": ("tensorflow (tf-keras)", 0.997, 0.967)}


def _installed(*modules: str) -> None:
    """Skip where a runtime is not installed, without importing it: a pytester test's imports are dropped after
    it, and TensorFlow cannot be imported twice in one process."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _fetched(*names: str) -> None:
    """Skip, naming the script, when a published file that cannot be shipped has not been fetched."""
    missing = [name for name in names if not (WILD / "fetched" / name).exists()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not fetched: run python scripts/fetch_wild_models.py")


def test_published_h5_and_tflite_models_run_from_the_wild_config_alone(pytester):
    _fetched("doodle-y/QuickDraw.h5", "draw-it/QuickDraw.h5", "quickdraw-acc93/quickdraw-acc93-v1.tflite",
             "quickdraw-acc93/quickdraw_labels.json")
    _installed("tf_keras", "ai_edge_litert")
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest_subprocess(*run_options(None), f"--sketch-config={WILD / 'thresholds.toml'}",
                                           f"--sketch-models={','.join(PUBLISHED)}", "--sketch-json=r.json")
    assert_ran(result, skipped=3, measured=12)  # no limits in the table: measured, not gated
    result.stdout.fnmatch_lines(["*a Keras 2.4.0 config, rebuilt with tf-keras 2.*"])
    records = json.loads((pytester.path / "r.json").read_text())["model_results"]
    for name, (runtime, closed_set, open_set) in PUBLISHED.items():
        record = records[name]
        assert record["model_info"]["runtime"] == runtime, name
        assert abs(record["accuracy_results"]["accuracy"] - closed_set) < 0.005, name
        assert abs(record["accuracy_results"]["open_set"]["accuracy"] - open_set) < 0.005, name
    assert "≈ chance" not in result.stdout.str()  # draw-it (two categories, 0.997) is not flagged


def test_a_published_h5_gives_its_own_tflite_exports_answers(bundled):
    """quickdraw-acc93.h5 (Keras 2.2.4-tf, read by tf-keras) and the TFLite file its author converted from it
    agree on every drawing: tf-keras reads the old file right (max |Δp| 2e-6 on the whole split)."""
    _fetched("quickdraw-acc93/quickdraw-acc93.h5", "quickdraw-acc93/quickdraw-acc93.tflite")
    pytest.importorskip("tf_keras")
    pytest.importorskip("ai_edge_litert")
    h5 = _load("keras", WILD / "fetched" / "quickdraw-acc93" / "quickdraw-acc93.h5")
    tflite = _load("tflite", WILD / "fetched" / "quickdraw-acc93" / "quickdraw-acc93.tflite")
    assert h5.describe().extra["keras_version"] == "2.2.4-tf"
    images = bundled.images[::8]
    np.testing.assert_allclose(np.asarray(h5.infer(h5.prepare(images))),
                               np.asarray(tflite.infer(tflite.prepare(images))), atol=1e-4)


def test_a_labels_file_from_another_training_session_is_flagged_as_chance_level(pytester):
    """The labels file published beside quickdraw-acc93.h5 came from the -v1 export's training session (another
    class order): the run says the score is chance-level instead of reporting 0.099 without comment."""
    _fetched("quickdraw-acc93/quickdraw-acc93.h5", "quickdraw-acc93/quickdraw_labels.json")
    _installed("tf_keras")
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest_subprocess(*run_options(None), f"--sketch-config={WILD / 'thresholds.toml'}",
                                           "--sketch-models=acc93-h5")
    result.stdout.fnmatch_lines(["*accuracy 0.099 ≈ chance (1/11): no ink polarity or value range helped*"])


def test_a_keras2_h5_file_is_read_by_tf_keras_and_says_so(tmp_path, centroid_weights, bundled):
    tf_keras = pytest.importorskip("tf_keras")
    w, b = centroid_weights
    model = tf_keras.Sequential([tf_keras.Input((28, 28, 1)), tf_keras.layers.Flatten(),
                                 tf_keras.layers.Dense(w.shape[1], activation="softmax")])
    model.layers[-1].set_weights([w, b])
    model.save(tmp_path / "old.h5")
    plugin = _load("keras", tmp_path / "old.h5", bundled.categories)
    x = bundled.images[:32].reshape(32, -1).astype(np.float32) / 255.0
    z = x @ w + b
    expected = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(plugin.predict(bundled.images[:32]), expected / expected.sum(1, keepdims=True),
                               atol=1e-5)
    info = plugin.describe()
    assert info.runtime == "tensorflow (tf-keras)" and info.extra["keras_version"].startswith("2.")
    assert info.extra["rebuilt_with"].startswith("tf-keras 2.")
    shipped = _load("keras", REPO / "models" / "cnn.h5").describe()  # a Keras 3 file stays with Keras 3
    assert shipped.runtime == "tensorflow" and shipped.extra["rebuilt_with"].startswith("keras 3.")


def test_layers_that_carry_code_are_refused_before_keras_reads_them(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential([tf_keras.Input((28, 28, 1)), tf_keras.layers.Lambda(lambda x: x * 2.0, name="twice"),
                                 tf_keras.layers.Flatten(), tf_keras.layers.Dense(3, activation="softmax")])
    model.save(tmp_path / "lambda.h5")
    with pytest.raises(SketchBenchError, match=re.escape("layer 'twice' is a Lambda: it carries code to run")):
        _load("keras", tmp_path / "lambda.h5")

    folder = tmp_path / "layers"
    folder.mkdir()
    topology = json.loads((WILD / "doodlejs" / "model.json").read_text())
    layers = topology["modelTopology"]["model_config"]["config"]["layers"]
    layers.insert(1, {"class_name": "TFOpLambda", "config": {"name": "tf.io.write_file", "function": "io.write_file"}})
    (folder / "model.json").write_text(json.dumps(topology))
    (folder / "group1-shard1of1.bin").write_bytes((WILD / "doodlejs" / "group1-shard1of1.bin").read_bytes())
    with pytest.raises(SketchBenchError, match=re.escape("layer 'tf.io.write_file' is a TFOpLambda")):
        _load("tfjs-layers", folder / "model.json")
