"""TensorFlow set-up shared by the Keras and TF.js plugins (imported only when one is used)."""

from __future__ import annotations

import os


def import_tensorflow(threads: int | None = None):
    """Import TensorFlow quietly; thread counts must be set before its first op runs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):  # allocate as needed: two workers can share a card
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised by an earlier model
            pass
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised by an earlier model: keep its setting
            pass
    return tf


def tf_device(tf, wanted: str) -> str:
    """The TF device string for 'cpu'/'gpu' requests, falling back to the CPU when no GPU is visible."""
    if wanted != "cpu" and tf.config.list_physical_devices("GPU"):
        return "/GPU:0"
    return "/CPU:0"


class TensorFlowCalls:
    """Shared by the Keras, SavedModel and TF.js plugins: NHWC input on the chosen TF device, ``self._call``
    timed. ``uses_keras`` plugins import Keras with TensorFlow (before memory tracking starts)."""

    uses_keras = False
    computes_in_process = True  # on the CPU device: TensorFlow's kernels run in this process's threads

    def import_runtime(self) -> None:
        import_tensorflow(self.config.get("threads"))
        if self.uses_keras:
            import keras  # noqa: F401

    def start_tensorflow(self):
        """TensorFlow with the model's thread count, and the model's TF device chosen (``self.tf_device``)."""
        tf = import_tensorflow(self.config.get("threads"))
        self.tf_device = tf_device(tf, self.config.get("device", "cpu"))
        self.device = "gpu" if "GPU" in self.tf_device else "cpu"
        self.tf = tf
        return tf

    def input_size(self) -> tuple[int, int]:
        return int(self.shape[1]), int(self.shape[2])

    def prepare(self, images):
        with self.tf.device(self.tf_device):
            return self.tf.constant(super().prepare(images))

    def infer(self, prepared):
        with self.tf.device(self.tf_device):
            return self._call(prepared).numpy()  # .numpy() waits for the device

    def gpu_memory_peak_bytes(self) -> int | None:
        """TensorFlow's own allocator peak on the model's GPU."""
        if "GPU" not in self.tf_device:
            return None
        return int(self.tf.config.experimental.get_memory_info(self.tf_device.strip("/"))["peak"])
