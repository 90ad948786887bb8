"""TF.js graph models (``model.json`` + shards) run in TensorFlow, without tensorflowjs."""

from __future__ import annotations

import json

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models._tf import TensorFlowCalls
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
from pytest_sketchbench.models.graph_ops import refuse_non_tfjs_ops, spec_ops
from pytest_sketchbench.models.keras_versions import import_tf_keras, is_keras2, rebuilt_with, refuse_code_layers
from pytest_sketchbench.models.tfjs_format import graph_def_from_spec, read_manifest


class TfjsGraphModel(TensorFlowCalls, ModelPlugin):
    runtime = "tfjs-graph (tensorflow)"

    def load(self) -> None:
        tf = self.start_tensorflow()
        path = self.require_file()
        if path.is_dir():
            path = path / "model.json"
        spec, weights = read_manifest(path)
        refuse_non_tfjs_ops(spec_ops(spec["modelTopology"]), f"model '{self.name}' ({path})")
        graph_def = graph_def_from_spec(spec, weights)
        signature = spec.get("signature") or {}
        input_entry = next(iter(signature.get("inputs", {}).values()), None)
        output_entry = next(iter(signature.get("outputs", {}).values()), None)
        placeholders = [n for n in graph_def.node if n.op == "Placeholder"]
        input_name = input_entry["name"] if input_entry else f"{placeholders[0].name}:0"
        output_name = output_entry["name"] if output_entry else f"{graph_def.node[-1].name}:0"
        if input_entry:
            dims = [int(d["size"]) for d in input_entry["tensorShape"]["dim"]]
        else:
            dims = [d.size for d in placeholders[0].attr["shape"].shape.dim]
        self.shape = [None if d < 0 else d for d in dims]
        if len(self.shape) != 4:
            raise SketchBenchError(str(path), f"input shape {self.shape} is not (N, H, W, C)",
                                   "the model must take a batch of images")
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"

        def import_graph():
            tf.graph_util.import_graph_def(graph_def, name="")

        with tf.device(self.tf_device):
            wrapped = tf.compat.v1.wrap_function(import_graph, [])
            self._call = wrapped.prune(wrapped.graph.get_tensor_by_name(input_name),
                                       wrapped.graph.get_tensor_by_name(output_name))
        self.parameter_count = int(sum(v.size for v in weights.values() if v.dtype == np.float32))
        self.metadata = spec.get("userDefinedMetadata", {})
        self.categories = self.metadata.get("categories") or self.sidecar_categories()
        self.spec_path = path

    def describe(self) -> ModelInfo:
        size = sum(f.stat().st_size for f in self.spec_path.parent.iterdir() if f.is_file())  # json + shards
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.spec_path), size, self.parameter_count, self.device)

    def release(self) -> None:
        self._call = None


class TfjsLayersModel(TensorFlowCalls, ModelPlugin):
    """TF.js *layers* models: the Keras config in ``modelTopology`` rebuilt in Keras (tf-keras for the Keras 2 configs
    tensorflowjs wrote), the shards' weights set by layer name — the same safety rules as graph models (no paths out
    of the folder, no truncated shards) and no layer that carries code."""

    runtime = "tfjs-layers (keras)"
    uses_keras = True

    def import_runtime(self) -> None:
        """Keras, and tf-keras for a Keras 2 file, imported before memory tracking starts (a peek at model.json)."""
        super().import_runtime()
        path = self.path / "model.json" if self.path and self.path.is_dir() else self.path
        try:  # a regular, small file only: a pipe or a huge file is load()'s to refuse
            if path is None or not path.is_file() or path.stat().st_size > 64 * 2**20:
                return
            version = json.loads(path.read_text())["modelTopology"].get("keras_version")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # load() names the problem
        if is_keras2(version):
            try:
                import tf_keras  # noqa: F401
            except ImportError:
                pass  # load() says how to install it

    def load(self) -> None:
        tf = self.start_tensorflow()
        path = self.require_file()
        if path.is_dir():
            path = path / "model.json"
        spec, weights = read_manifest(path, expected="layers-model")
        topology = spec["modelTopology"]
        self.keras_version = topology.get("keras_version")
        refuse_code_layers(topology, f"model '{self.name}' ({path})")
        with tf.device(self.tf_device):
            self.model = _keras_from_topology(topology, path, self.keras_version)
            _set_weights(self.model, weights, path)
        self.rebuilt_with = rebuilt_with(self.keras_version)
        self.runtime = f"tfjs-layers ({self.rebuilt_with.split()[0]})"
        self.shape = [None if d is None else int(d) for d in self.model.inputs[0].shape]
        if len(self.shape) != 4:
            raise SketchBenchError(str(path), f"input shape {self.shape} is not (N, H, W, C)",
                                   "the model must take a batch of images")
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"
        model = self.model
        signature = [tf.TensorSpec([None, *self.shape[1:]], tf.float32)]
        self._call = tf.function(lambda x: model(x, training=False), input_signature=signature)
        self.metadata = spec.get("userDefinedMetadata") or {}
        self.categories = self.metadata.get("categories") or self.sidecar_categories()
        self.spec_path = path

    def describe(self) -> ModelInfo:
        size = sum(f.stat().st_size for f in self.spec_path.parent.iterdir() if f.is_file())
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.spec_path), size, int(self.model.count_params()), self.device,
                         extra={"keras_version": self.keras_version, "rebuilt_with": self.rebuilt_with})

    def release(self) -> None:
        self.model = self._call = None


def _keras_from_topology(topology: dict, path, version: str | None):
    """A Keras model from a layers model's config: Keras 2 configs (what tensorflowjs writes) through tf-keras,
    Keras 3 ones through Keras 3 (its own legacy loader for a config without module names)."""
    import keras
    from keras.src.legacy.saving import saving_utils

    config = topology.get("model_config", topology)
    try:
        if is_keras2(version):
            return import_tf_keras(str(path), version).models.model_from_config(config)
        if "module" in config:  # a Keras 3 serialisation
            return keras.saving.deserialize_keras_object(config)
        return saving_utils.model_from_config(config)
    except SketchBenchError:
        raise
    except Exception as exc:  # Keras raises ValueError/TypeError/KeyError for configs it cannot build
        keras_name = "tf-keras" if is_keras2(version) else "Keras"
        raise SketchBenchError(str(path), f"{keras_name} cannot rebuild the layers model ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:160] if str(exc) else ''})",
                               "a custom or unknown layer cannot be rebuilt; convert to a graph model or ONNX"
                               ) from None


def _set_weights(model, weights: dict[str, np.ndarray], path) -> None:
    """Each model variable from the manifest entry of the same name (its full path, else ``layer/variable``
    without the model's prefix or a ``:0`` suffix), in the variable's shape."""
    def short(name: str) -> str:  # "sequential/dense/kernel:0" → "dense/kernel"
        return "/".join(name.removesuffix(":0").split("/")[-2:])

    by_name = {name.removesuffix(":0"): value for name, value in weights.items()}
    by_short = {short(name): value for name, value in weights.items()}
    for variable in model.weights:
        where = getattr(variable, "path", None) or variable.name.removesuffix(":0")  # Keras 3 / tf-keras
        value = by_name.get(where, by_short.get(short(where)))
        if value is None:
            raise SketchBenchError(str(path), f"no weight for '{where}' in the manifest",
                                   f"it lists {', '.join(list(by_name)[:4])}…; re-export the model")
        if tuple(value.shape) != tuple(variable.shape):
            raise SketchBenchError(str(path), f"weight '{where}' has shape {list(value.shape)}, the layer "
                                   f"needs {list(variable.shape)}", "the shards do not match the topology")
        variable.assign(value)
