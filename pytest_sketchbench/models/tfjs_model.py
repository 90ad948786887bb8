"""TF.js graph models (``model.json`` + shards) run in TensorFlow, without tensorflowjs."""

from __future__ import annotations

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models._tf import TensorFlowCalls, import_tensorflow, tf_device
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
from pytest_sketchbench.models.tfjs_format import graph_def_from_spec, read_manifest


class TfjsGraphModel(TensorFlowCalls, ModelPlugin):
    runtime = "tfjs-graph (tensorflow)"

    def import_runtime(self) -> None:
        import_tensorflow(self.config.get("threads"))

    def load(self) -> None:
        tf = import_tensorflow(self.config.get("threads"))
        path = self.require_file()
        if path.is_dir():
            path = path / "model.json"
        spec, weights = read_manifest(path)
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

        self.tf_device = tf_device(tf, self.config.get("device", "cpu"))
        self.device = "gpu" if "GPU" in self.tf_device else "cpu"

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
        self.tf = tf

    def describe(self) -> ModelInfo:
        size = sum(f.stat().st_size for f in self.spec_path.parent.iterdir() if f.is_file())  # json + shards
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.spec_path), size, self.parameter_count, self.device)

    def release(self) -> None:
        self._call = None
