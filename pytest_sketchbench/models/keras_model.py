"""Keras models (``.h5``, ``.keras``), called through a compiled ``tf.function``.

Keras ``predict()`` costs milliseconds of overhead per call on single drawings; a traced
function with a fixed input signature calls the graph directly.
"""

from __future__ import annotations

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models._tf import TensorFlowCalls, import_tensorflow, tf_device
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin


class KerasModel(TensorFlowCalls, ModelPlugin):
    runtime = "tensorflow"

    def import_runtime(self) -> None:
        import_tensorflow(self.config.get("threads"))
        import keras  # noqa: F401

    def load(self) -> None:
        tf = import_tensorflow(self.config.get("threads"))
        import keras

        path = self.require_file()
        self.tf_device = tf_device(tf, self.config.get("device", "cpu"))
        self.device = "gpu" if "GPU" in self.tf_device else "cpu"
        try:
            with tf.device(self.tf_device):
                self.model = keras.models.load_model(str(path), compile=False)
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
        self.tf = tf

    def describe(self) -> ModelInfo:
        return ModelInfo(self.name, self.runtime, self.tf.__version__, self.input_format, self.shape,
                         self.categories, str(self.path), self.file_size(), int(self.model.count_params()),
                         self.device, extra={"keras_version": _keras_version()})

    def release(self) -> None:
        self.model = self._call = None


def _keras_version() -> str:
    import keras

    return keras.__version__
