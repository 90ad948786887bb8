"""Each runtime loader on a tiny model the test builds itself: Keras .h5, ONNX, TorchScript, TF.js graph, LiteRT.

All of them carry the same nearest-centroid weights, so their predictions must agree exactly
(up to float rounding) — and differ from nothing but the runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO, run_options
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
    plugin = ModelSpec("tiny", RUNTIMES[runtime].plugin, config).create()
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


def test_torch_export_program_with_a_dynamic_batch(tmp_path, centroid_weights, bundled, expected):
    import torch

    w, b = centroid_weights
    linear = torch.nn.Linear(784, len(bundled.categories))
    linear.weight.data, linear.bias.data = torch.from_numpy(w.T.copy()), torch.from_numpy(b)
    network = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(network, (torch.zeros(2, 28, 28, 1),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(tmp_path / "tiny.pt2"))
    assert runtime_for_path(tmp_path / "tiny.pt2") == "torch-export"
    plugin = _load("torch-export", tmp_path / "tiny.pt2", bundled.categories)
    assert plugin.shape == [None, 28, 28, 1] and plugin.describe().parameter_count == 785 * len(bundled.categories)
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)
    np.testing.assert_allclose(plugin.predict(bundled.images[:1]), _softmax(expected[:1]), atol=1e-5)


def test_keras_native_file_and_savedmodel_folder(tmp_path, centroid_weights, bundled, expected):
    model = _keras_model(centroid_weights)
    model.save(tmp_path / "tiny.keras")
    native = _load("keras", tmp_path / "tiny.keras", bundled.categories)
    np.testing.assert_allclose(native.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)
    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    assert runtime_for_path(tmp_path / "saved") == "savedmodel"
    plugin = _load("savedmodel", tmp_path / "saved", bundled.categories)
    assert plugin.shape == [None, 28, 28, 1] and plugin.describe().parameter_count == 785 * len(bundled.categories)
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)
    config = {"path": str(tmp_path / "saved"), "signature": "predict"}
    with pytest.raises(SketchBenchError, match="no signature 'predict' in .* it has serve, serving_default"):
        broken = ModelSpec("tiny", RUNTIMES["savedmodel"].plugin, config).create()
        broken.import_runtime()
        broken.load()


def test_onnx_in_nchw_is_fed_channels_first(tmp_path, centroid_weights, bundled, expected):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = centroid_weights
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"]), helper.make_node("Gemm", ["flat", "w", "b"], ["logits"])],
        "nchw", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "nchw.onnx")
    plugin = _load("onnx", tmp_path / "nchw.onnx", bundled.categories)
    assert plugin.channels_first and plugin.input_size() == (28, 28)
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


def test_tfjs_layers_model_keras3_config(tmp_path, centroid_weights, bundled, expected):
    from pytest_sketchbench.models.tfjs_format import write_layers_model

    path = write_layers_model(_keras_model(centroid_weights), tmp_path / "layers", {"categories": bundled.categories})
    assert runtime_for_path(path) == "tfjs-layers" and runtime_for_path(tmp_path / "layers") == "tfjs-layers"
    plugin = _load("tfjs-layers", path)
    assert plugin.categories == bundled.categories and plugin.describe().parameter_count == 785 * 23
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)


def test_tfjs_layers_model_keras2_config_as_tensorflowjs_writes_it(tmp_path, centroid_weights, bundled, expected):
    """The topology tensorflowjs' converter writes (Keras 2: batch_input_shape, no module names)."""
    w, b = centroid_weights
    folder = tmp_path / "doodle"
    folder.mkdir()
    (folder / "group1-shard1of1.bin").write_bytes(w.tobytes() + b.tobytes())
    topology = {"keras_version": "2.4.0", "backend": "tensorflow", "model_config": {"class_name": "Sequential",
                "config": {"name": "sequential", "layers": [
                    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1], "dtype": "float32",
                                                             "sparse": False, "name": "input_1"}},
                    {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                                         "data_format": "channels_last"}},
                    {"class_name": "Dense", "config": {"name": "dense", "trainable": True, "dtype": "float32",
                                                       "units": w.shape[1], "activation": "softmax", "use_bias": True,
                                                       "kernel_initializer": {"class_name": "Zeros", "config": {}},
                                                       "bias_initializer": {"class_name": "Zeros", "config": {}}}}]}}}
    manifest = [{"paths": ["group1-shard1of1.bin"], "weights": [
        {"name": "dense/kernel", "shape": list(w.shape), "dtype": "float32"},
        {"name": "dense/bias", "shape": list(b.shape), "dtype": "float32"}]}]
    (folder / "model.json").write_text(json.dumps({"format": "layers-model", "modelTopology": topology,
                                                   "weightsManifest": manifest}))
    plugin = _load("tfjs-layers", folder / "model.json", bundled.categories)
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)
    with pytest.raises(SketchBenchError, match='a TF.js layers-model, read as a graph-model — set runtime = '
                                               '"tfjs-layers"'):
        _load("tfjs", folder / "model.json")
    manifest[0]["weights"][0]["name"] = "dense_9/kernel"
    (folder / "model.json").write_text(json.dumps({"format": "layers-model", "modelTopology": topology,
                                                   "weightsManifest": manifest}))
    with pytest.raises(SketchBenchError, match="no weight for 'sequential/dense/kernel'|no weight for 'dense/kernel'"):
        _load("tfjs-layers", folder / "model.json", bundled.categories)


def _tflite(model, path, calibration=None) -> None:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8  # integer edges
    path.write_bytes(converter.convert())


def test_litert_float_and_int8_with_integer_edges(tmp_path, centroid_weights, bundled, expected):
    model = _keras_model(centroid_weights)
    _tflite(model, tmp_path / "tiny.tflite")
    plugin = _load("tflite", tmp_path / "tiny.tflite", bundled.categories)
    assert plugin.describe().input_shape == [-1, 28, 28, 1] and plugin.input_format == "grayscale"
    np.testing.assert_allclose(plugin.predict(bundled.images[:64]), _softmax(expected), atol=1e-5)
    assert plugin.predict(bundled.images[:3]).shape == (3, len(bundled.categories))  # another batch size
    calibration = bundled.images[::50, ..., None].astype(np.float32) / 255.0
    _tflite(model, tmp_path / "tiny-int8.tflite", calibration)
    quantized = _load("tflite", tmp_path / "tiny-int8.tflite", bundled.categories)
    assert quantized.describe().extra["input_dtype"] == "int8"  # the plugin quantizes the input itself
    agreement = np.mean(quantized.predict(bundled.images[:64]).argmax(1) == expected.argmax(1))
    assert agreement >= 0.9


@pytest.mark.parametrize("runtime, name", [("keras", "bad.h5"), ("onnx", "bad.onnx"), ("torch", "bad.pt"),
                                           ("tflite", "bad.tflite"), ("torch-export", "bad.pt2")])
def test_corrupt_model_file_is_named(tmp_path, runtime, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a model")
    with pytest.raises(SketchBenchError) as error:
        _load(runtime, path)
    assert "model 'tiny'" in str(error.value) and str(path) in str(error.value) and " — " in str(error.value)


@pytest.mark.parametrize("name, runtime", [("a.h5", "keras"), ("a.keras", "keras"), ("a.onnx", "onnx"),
                                           ("a.pt", "torch"), ("model.json", "tfjs"), ("a.tflite", "tflite")])
def test_runtime_detection_from_path(name, runtime):
    assert runtime_for_path(name) == runtime


def test_unknown_extension_is_explained():
    with pytest.raises(SketchBenchError, match="cannot tell the runtime from 'a.bin'"):
        runtime_for_path("a.bin")


def test_a_345_class_layers_model_is_scored_closed_and_open_set_from_path_and_categories(
        pytester, tmp_path, centroid_weights, bundled):
    """A public-style TF.js layers model: 345 classes in its own order, a class_names.txt, nothing else."""
    from pytest_sketchbench.models.tfjs_format import write_layers_model

    w, b = centroid_weights
    names = bundled.categories + [f"other_{i}" for i in range(345 - len(bundled.categories))]
    order = np.random.default_rng(1).permutation(len(names))
    kernel = np.random.default_rng(2).normal(0, 0.01, (784, 345)).astype(np.float32)  # others rarely win
    bias = np.zeros(345, np.float32)
    for column, index in enumerate(order):
        if index < len(bundled.categories):
            kernel[:, column], bias[column] = w[:, index] * 20, b[index] * 20
    decoys = [c for c, i in enumerate(order) if i >= len(bundled.categories)][:5]
    kernel[:, decoys] += w[:, :5] * 21  # five outside classes that beat five real ones: open-set < closed-set
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(345, activation="softmax")])
    model.layers[-1].set_weights([kernel, bias])
    write_layers_model(model, pytester.path / "doodle")
    (pytester.path / "doodle" / "class_names.txt").write_text(
        "\n".join(names[i].upper().replace("_", " ") for i in order) + "\n")  # matched by normalised name
    pytester.makefile(".toml", thresholds='[models.doodle]\npath = "doodle/model.json"\n'
                                          'categories = "doodle/class_names.txt"\n')
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest_subprocess(*run_options(20), "--sketch-models=doodle", "-v",
                                           f"--sketch-json={tmp_path}/r.json", f"--sketch-html={tmp_path}/r.html")
    assert result.ret == 0, result.stdout.str()[-2000:]
    text = result.stdout.str()
    assert "closed-set" in text and "open-set acc" in text and "outside the dataset's categories" in text
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["doodle"]
    closed, open_set = record["accuracy_results"]["accuracy"], record["accuracy_results"]["open_set"]
    assert record["model_info"]["runtime"].startswith("tfjs-layers") and len(record["model_info"]["categories"]) == 345
    assert open_set["accuracy"] < closed and 0 < open_set["outside_rate"] < 1
    assert "open-set acc" in (tmp_path / "r.html").read_text()


def test_a_runtime_that_is_not_installed_names_its_extra(pytester, monkeypatch):
    """The registry's row for ONNX Runtime says which extra installs it: one usage line before any test, not a
    traceback (and not one error per test)."""
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails as if not installed
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest(*run_options(1), "-k", "test_accuracy", "--sketch-models=onnx",
                                f"--rootdir={pytester.path}")
    assert ("model 'onnx': its runtime needs onnxruntime, which is not installed — pip install "
            "'pytest-sketchbench[onnx]', or pick a model this install can run") in result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_litert_answers_from_two_threads_as_from_one(bundled):
    """LiteRT's interpreter is not thread-safe: each calling thread gets its own, so a LoadGen SUT with
    concurrency 2 gives exactly the answers of concurrency 1 (the shipped cnn.tflite, mixed batch sizes)."""
    from concurrent.futures import ThreadPoolExecutor

    from pytest_sketchbench.measure import classify

    plugin = _load("tflite", REPO / "models" / "cnn.tflite")
    images = bundled.images[:1200]
    chunks = [images[start:start + size] for start, size in zip(range(0, 1200, 40), [1, 8, 40] * 10, strict=True)]
    alone = [classify(plugin, chunk) for chunk in chunks]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda chunk: classify(plugin, chunk), chunks * 4))
    assert all(np.array_equal(a, b) for a, b in zip(alone * 4, together, strict=True))
