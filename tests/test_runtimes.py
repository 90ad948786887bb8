"""Each runtime loader on a tiny model the test builds itself: Keras .h5, ONNX, TorchScript, TF.js graph.

All four carry the same nearest-centroid weights, so their predictions must agree exactly
(up to float rounding) — and differ from nothing but the runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.registry import RUNTIMES, ModelSpec, runtime_for_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expected(bundled, centroid_weights):
    w, b = centroid_weights
    x = bundled.images[:64].reshape(64, -1).astype(np.float32) / 255.0
    return x @ w + b


def _keras_model(centroid_weights):
    import keras

    w, b = centroid_weights
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(w.shape[1], activation="softmax")])
    model.layers[-1].set_weights([w, b])
    return model


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _load(runtime: str, path, categories=None):
    config = {"path": str(path)} | ({"categories": categories} if categories else {})
    plugin = ModelSpec("tiny", RUNTIMES[runtime], config).create()
    plugin.import_runtime()
    plugin.load()
    return plugin


def test_keras_h5(tmp_path, centroid_weights, bundled, expected):
    path = tmp_path / "tiny.h5"
    _keras_model(centroid_weights).save(path)
    (tmp_path / "tiny.classes.json").write_text(json.dumps({"categories": bundled.categories}))
    plugin = _load("keras", path)
    assert plugin.categories == bundled.categories
    assert plugin.describe().parameter_count == 785 * len(bundled.categories)
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)


def test_onnx(tmp_path, centroid_weights, bundled, expected):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = centroid_weights
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1), helper.make_node("Gemm", ["flat", "w", "b"], ["z"])],
        "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 28, 28, 1])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", len(bundled.categories)])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"categories": ",".join(bundled.categories)})
    onnx.save(model, tmp_path / "tiny.onnx")
    plugin = _load("onnx", tmp_path / "tiny.onnx")
    assert plugin.categories == bundled.categories  # read from the model's metadata
    raw = plugin.infer(plugin.prepare(bundled.images[:64]))
    np.testing.assert_allclose(raw, expected, atol=1e-4)  # logits out …
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)  # … softmax


def test_torchscript(tmp_path, centroid_weights, bundled, expected):
    import torch

    w, b = centroid_weights
    linear = torch.nn.Linear(784, len(bundled.categories))
    linear.weight.data, linear.bias.data = torch.from_numpy(w.T.copy()), torch.from_numpy(b)
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), linear))
    scripted.save(str(tmp_path / "tiny.pt"))
    plugin = _load("torch", tmp_path / "tiny.pt", bundled.categories)
    assert plugin.describe().parameter_count == 785 * len(bundled.categories)
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)


def test_tfjs_graph_model(tmp_path, centroid_weights, bundled, expected):
    from pytest_sketchbench.models.tfjs_format import freeze_keras, write_graph_model

    graph_def, inputs, outputs = freeze_keras(_keras_model(centroid_weights))
    write_graph_model(graph_def, tmp_path / "tfjs", inputs, outputs, {"categories": bundled.categories})
    spec = json.loads((tmp_path / "tfjs" / "model.json").read_text())
    assert spec["format"] == "graph-model" and spec["weightsManifest"][0]["paths"] == ["group1-shard1of1.bin"]
    plugin = _load("tfjs", tmp_path / "tfjs" / "model.json")
    assert plugin.input_size() == (28, 28) and plugin.categories == bundled.categories
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)


def test_tfjs_rejects_weight_paths_outside_the_model_folder(tmp_path, centroid_weights):
    from pytest_sketchbench.models.tfjs_format import freeze_keras, read_manifest, write_graph_model

    graph_def, inputs, outputs = freeze_keras(_keras_model(centroid_weights))
    path = write_graph_model(graph_def, tmp_path / "m", inputs, outputs)
    spec = json.loads(path.read_text())
    good = list(spec["weightsManifest"][0]["paths"])
    for bad in ("../secret.bin", "/etc/passwd", "."):
        spec["weightsManifest"][0]["paths"] = [bad]
        path.write_text(json.dumps(spec))
        with pytest.raises(SketchBenchError, match="is not a file in the model folder"):
            read_manifest(path)
    spec["weightsManifest"][0]["paths"] = good
    for shape in ([2**40, 2**40, 2**40], [-1, 3], "784"):  # int64 overflow, negative, not a list
        spec["weightsManifest"][0]["weights"][0]["shape"] = shape
        path.write_text(json.dumps(spec))
        with pytest.raises(SketchBenchError, match="shards end before|has shape"):
            read_manifest(path)


def test_tfjs_truncated_shard(tmp_path, centroid_weights):
    from pytest_sketchbench.models.tfjs_format import freeze_keras, read_manifest, write_graph_model

    graph_def, inputs, outputs = freeze_keras(_keras_model(centroid_weights))
    path = write_graph_model(graph_def, tmp_path / "m", inputs, outputs)
    shard = tmp_path / "m" / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(SketchBenchError, match="truncated or missing"):
        read_manifest(path)


@pytest.mark.parametrize("runtime, name", [("keras", "bad.h5"), ("onnx", "bad.onnx"), ("torch", "bad.pt")])
def test_corrupt_model_file_is_named(tmp_path, runtime, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a model")
    with pytest.raises(SketchBenchError) as error:
        _load(runtime, path)
    assert "model 'tiny'" in str(error.value) and str(path) in str(error.value) and " — " in str(error.value)


@pytest.mark.parametrize("name, runtime", [("a.h5", "keras"), ("a.keras", "keras"), ("a.onnx", "onnx"),
                                           ("a.pt", "torch"), ("model.json", "tfjs")])
def test_runtime_detection_from_path(name, runtime):
    assert runtime_for_path(name) == runtime


def test_unknown_extension_is_explained():
    with pytest.raises(SketchBenchError, match="cannot tell the runtime from 'a.bin'"):
        runtime_for_path("a.bin")
