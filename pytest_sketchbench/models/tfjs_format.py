"""Read and write TF.js *graph* and *layers* models without the tensorflowjs package.

A graph model is ``model.json`` — ``modelTopology`` (a TensorFlow GraphDef written as
protobuf JSON, weight constants left without values) and ``weightsManifest`` (which
binary shards hold which weights, in order) — plus ``group1-shard{i}of{n}.bin`` files.
A layers model (``"format": "layers-model"``) has the same manifest and shards, but its topology is a
Keras model config (``{"model_config": {...}, "keras_version": ...}``) and its weights are named by layer
(``conv2d/kernel``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from pytest_sketchbench.errors import SketchBenchError

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
SHARD_BYTES = 4 * 1024 * 1024  # tensorflowjs' default shard size
FORMATS = {"graph-model": "tfjs", "layers-model": "tfjs-layers"}  # model.json "format" → our runtime name


def model_json_format(path: Path) -> str:
    """``graph-model`` or ``layers-model``, from the file (for picking the runtime); unreadable → graph-model,
    whose loader then names the problem."""
    path = Path(path)
    try:
        spec = json.loads((path / "model.json" if path.is_dir() else path).read_text())
        topology = spec.get("modelTopology")
        found = spec.get("format") or ("layers-model" if isinstance(topology, dict) and "model_config" in topology
                                       else "graph-model")
    except (OSError, ValueError, AttributeError):
        return "graph-model"
    return found if found in FORMATS else "graph-model"


def read_manifest(model_json: Path, expected: str = "graph-model") -> tuple[dict, dict[str, np.ndarray]]:
    """Parse model.json and its shards; return (model.json contents, weights by name). ``expected`` is the
    format the caller reads: the other one is an error naming the runtime that reads it."""
    model_json = Path(model_json)
    if model_json.is_dir():
        model_json = model_json / "model.json"
    try:
        spec = json.loads(model_json.read_text())
    except FileNotFoundError:
        raise SketchBenchError(str(model_json), "file not found", "point the model at a TF.js model.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SketchBenchError(str(model_json), f"not valid JSON ({exc})", "re-export the TF.js model") from None
    found = spec.get("format") if isinstance(spec, dict) else None
    if found is None and isinstance(spec, dict) and isinstance(spec.get("modelTopology"), dict):
        found = "layers-model" if "model_config" in spec["modelTopology"] else "graph-model"  # older exporters
    if found not in FORMATS or "modelTopology" not in spec:
        raise SketchBenchError(str(model_json), f"not a TF.js model (format={found!r})",
                               "a model.json from tensorflowjs: a graph model or a layers model")
    if found != expected:
        raise SketchBenchError(str(model_json), f"a TF.js {found}, read as a {expected}",
                               f'set runtime = "{FORMATS[found]}" in its [models.<name>] table, or leave runtime out')
    folder = model_json.parent.resolve()
    weights: dict[str, np.ndarray] = {}
    for group in spec.get("weightsManifest", []):
        buffer = b"".join(_read_shard(folder, relative, model_json) for relative in group["paths"])
        offset = 0
        for entry in group["weights"]:
            if "quantization" in entry:
                raise SketchBenchError(str(model_json), f"weight '{entry['name']}' is quantized",
                                       "export the graph model without weight quantization")
            dtype = DTYPES.get(entry["dtype"])
            if dtype is None:
                raise SketchBenchError(str(model_json), f"unsupported weight dtype {entry['dtype']}",
                                       f"use one of {', '.join(DTYPES)}")
            shape = entry.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                      for d in shape):
                raise SketchBenchError(str(model_json), f"weight '{entry.get('name')}' has shape {shape!r}",
                                       "a shape is a list of non-negative integers; re-export the model")
            count = math.prod(shape)  # Python integers: a huge shape cannot wrap around
            size = count * np.dtype(dtype).itemsize
            if offset + size > len(buffer):
                raise SketchBenchError(str(model_json), f"shards end before weight '{entry['name']}'",
                                       "a .bin shard is truncated or missing; re-export the model")
            weights[entry["name"]] = np.frombuffer(buffer, dtype, count, offset).reshape(entry["shape"])
            offset += size
    return spec, weights


def _read_shard(folder: Path, relative: str, model_json: Path) -> bytes:
    """Read one shard, refusing paths that leave the model's folder (``../``, absolute paths)."""
    target = (folder / str(relative)).resolve()
    if not target.is_relative_to(folder) or target == folder or (target.exists() and not target.is_file()):
        raise SketchBenchError(str(model_json), f"weight path '{relative}' is not a file in the model folder",
                               "shard paths must be plain file names beside model.json")
    try:
        return target.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise SketchBenchError(str(model_json), f"weight shard '{relative}' not found",
                               "copy all group1-shard*.bin files beside model.json") from None


def graph_def_from_spec(spec: dict, weights: dict[str, np.ndarray]):
    """A TensorFlow GraphDef with the weights put back into their Const nodes."""
    import tensorflow as tf
    from google.protobuf import json_format

    graph_def = json_format.ParseDict(spec["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    nodes = {node.name: node for node in graph_def.node}
    for name, value in weights.items():
        node = nodes.get(name)
        if node is None:
            raise SketchBenchError("model.json", f"weight '{name}' has no node in the graph", "re-export the model")
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    return graph_def


def write_graph_model(graph_def, out_dir: Path, inputs: dict, outputs: dict, metadata: dict | None = None) -> Path:
    """Write a frozen GraphDef as model.json + shards, moving every Const's value into the shards.

    ``inputs``/``outputs`` map signature names to ``{"name": "x:0", "dtype": ..., "shape": [...]}``.
    """
    import tensorflow as tf
    from google.protobuf import json_format

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_def = tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString())
    manifest, blobs = [], []
    for node in graph_def.node:
        if node.op != "Const":
            continue
        value = tf.make_ndarray(node.attr["value"].tensor)
        dtype = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.bool_): "bool"}.get(
            value.dtype)
        if dtype is None:  # strings and others stay inline in the graph
            continue
        manifest.append({"name": node.name, "shape": list(value.shape), "dtype": dtype})
        blobs.append(np.ascontiguousarray(value).tobytes())
        del node.attr["value"]
    data = b"".join(blobs)
    n_shards = max(1, -(-len(data) // SHARD_BYTES))
    paths = []
    for index in range(n_shards):
        name = f"group1-shard{index + 1}of{n_shards}.bin"
        (out_dir / name).write_bytes(data[index * SHARD_BYTES:(index + 1) * SHARD_BYTES])
        paths.append(name)

    def signature(entries: dict) -> dict:
        return {key: {"name": e["name"], "dtype": "DT_FLOAT",
                      "tensorShape": {"dim": [{"size": str(-1 if d is None else d)} for d in e["shape"]]}}
                for key, e in entries.items()}

    spec = {
        "format": "graph-model",
        "generatedBy": f"TensorFlow {tf.__version__}",
        "convertedBy": "pytest_sketchbench.models.tfjs_format",
        "signature": {"inputs": signature(inputs), "outputs": signature(outputs)},
        "userDefinedMetadata": metadata or {},
        "modelTopology": json_format.MessageToDict(graph_def),
        "weightsManifest": [{"paths": paths, "weights": manifest}],
    }
    path = out_dir / "model.json"
    path.write_text(json.dumps(spec, separators=(",", ":")))
    return path


def freeze_keras(model):
    """A frozen (constants-only) GraphDef of a Keras model's inference function, and its tensor names."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    input_name = frozen.inputs[0].name
    output_name = frozen.outputs[0].name
    shape = [None, *[int(d) for d in model.inputs[0].shape[1:]]]
    n_out = int(model.outputs[0].shape[-1])
    return graph_def, {"image": {"name": input_name, "shape": shape}}, \
        {"probabilities": {"name": output_name, "shape": [None, n_out]}}


def write_layers_model(model, out_dir: Path, metadata: dict | None = None) -> Path:
    """Write a Keras model as a TF.js layers model (topology = its config, weights named by layer path)."""
    import keras

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest, blobs = [], []
    for weight in model.weights:
        value = np.asarray(keras.ops.convert_to_numpy(weight), dtype=np.float32)
        manifest.append({"name": weight.path, "shape": list(value.shape), "dtype": "float32"})
        blobs.append(value.tobytes())
    (out_dir / "group1-shard1of1.bin").write_bytes(b"".join(blobs))
    spec = {"format": "layers-model", "generatedBy": f"keras v{keras.__version__}",
            "convertedBy": "pytest_sketchbench.models.tfjs_format",
            "modelTopology": {"keras_version": keras.__version__, "backend": "tensor_flow.js",
                              "model_config": json.loads(model.to_json())},
            "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
            "userDefinedMetadata": metadata or {}}
    path = out_dir / "model.json"
    path.write_text(json.dumps(spec))
    return path
