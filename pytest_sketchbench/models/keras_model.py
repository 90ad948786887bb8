"""Keras models (``.h5``, ``.keras``) and TensorFlow SavedModel folders, called through a ``tf.function``.

Keras ``predict()`` costs milliseconds of overhead per call on single drawings; a traced
function with a fixed input signature calls the graph directly.
"""

from __future__ import annotations

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models._tf import TensorFlowCalls
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
from pytest_sketchbench.models.graph_ops import graph_ops, refuse_unsafe_ops
from pytest_sketchbench.models.keras_versions import (
    h5_keras_version,
    h5_model_config,
    import_tf_keras,
    is_keras2,
    rebuilt_with,
    refuse_code_layers,
)


class KerasModel(TensorFlowCalls, ModelPlugin):
    runtime = "tensorflow"
    uses_keras = True

    def load(self) -> None:
        tf = self.start_tensorflow()
        import keras

        path = self.require_file()
        legacy = path.suffix.lower() in (".h5", ".hdf5")
        self.keras_version = h5_keras_version(path) if legacy else None
        loader = keras
        if is_keras2(self.keras_version):  # a Keras 2 file: tf-keras reads it as it was written
            refuse_code_layers(h5_model_config(path), f"model '{self.name}' ({path})")
            loader = import_tf_keras(f"model '{self.name}' ({path})", self.keras_version)
        try:
            with tf.device(self.tf_device):
                self.model = loader.models.load_model(str(path), compile=False)
        except Exception as exc:  # h5py/keras raise OSError, ValueError, TypeError for bad files
            raise SketchBenchError(f"model '{self.name}'", f"Keras cannot load {path} ({exc.__class__.__name__}: "
                                   f"{str(exc).splitlines()[0][:160]})",
                                   "the file is corrupt or not a Keras model; re-save it with model.save()") from None
        shape = list(self.model.inputs[0].shape)
        self.shape = [None if d is None else int(d) for d in shape]
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"
        model = self.model
        signature = [tf.TensorSpec([None, *self.shape[1:]], tf.float32)]
        self._call = tf.function(lambda x: model(x, training=False), input_signature=signature)
        self.categories = self.sidecar_categories()
        self.rebuilt_with = rebuilt_with(self.keras_version)
        if is_keras2(self.keras_version):
            self.runtime = "tensorflow (tf-keras)"

    def describe(self) -> ModelInfo:
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.path), self.file_size(), int(self.model.count_params()),
                         self.device, extra={"keras_version": self.keras_version, "rebuilt_with": self.rebuilt_with})

    def release(self) -> None:
        self.model = self._call = None


class SavedModel(TensorFlowCalls, ModelPlugin):
    """A TensorFlow SavedModel folder, called through its serving signature (``signature``, default
    ``serving_default``); the input shape comes from the signature, the output is ``output`` or the first."""

    runtime = "tensorflow-savedmodel"
    options = ("signature", "output", "trust_model")

    def load(self) -> None:
        tf = self.start_tensorflow()
        path = self.require_file()
        try:
            with tf.device(self.tf_device):
                self.loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow raises OSError/ValueError variants for bad folders
            raise SketchBenchError(f"model '{self.name}'", f"TensorFlow cannot load the SavedModel {path} "
                                   f"({exc.__class__.__name__})", "re-export it (model.export(path))") from None
        wanted = self.config.get("signature", "serving_default")
        if wanted not in self.loaded.signatures:
            raise SketchBenchError(f"model '{self.name}'", f"no signature '{wanted}' in {path}",
                                   f"it has {', '.join(self.loaded.signatures) or 'none'}; set signature = ...")
        function = self.loaded.signatures[wanted]
        if self.config.get("trust_model") is not True:  # scanned before its first call: a SavedModel is a program
            graph_def = function.graph.as_graph_def()
            refuse_unsafe_ops(graph_ops(graph_def.node, graph_def.library.function), f"model '{self.name}' ({path})")
        (input_name, spec), = function.structured_input_signature[1].items()
        output = self.config.get("output") or next(iter(function.structured_outputs))
        self.shape = [None if d is None else int(d) for d in spec.shape]
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"
        self._call = lambda x: function(**{input_name: x})[output]
        self.categories = self.sidecar_categories()

    def describe(self) -> ModelInfo:
        count = sum(int(v.shape.num_elements()) for v in getattr(self.loaded, "variables", []))
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.path), self.file_size(), count or None, self.device)

    def release(self) -> None:
        self.loaded = self._call = None
