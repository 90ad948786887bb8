"""LiteRT (TensorFlow Lite) models (``.tflite``) through ``ai-edge-litert``'s interpreter — no TensorFlow needed.

The interpreter runs one batch shape at a time: a batch of another size resizes the input tensor and
re-allocates (once per size; the timed call never includes it, ``prepare`` does it). Integer-quantized
inputs or outputs (an int8 model without float32 edges) are (de)quantized with the tensor's own scale
and zero point. LiteRT's interpreter is not thread-safe (its tensors are its state), so each thread that calls
the model — a LoadGen SUT with ``concurrency > 1`` — gets its own interpreter of the same file.
"""

from __future__ import annotations

import threading

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin, image_layout


class LiteRTModel(ModelPlugin):
    runtime = "litert"
    computes_in_process = True  # on the CPU device: its kernels run in this process

    def import_runtime(self) -> None:
        try:
            from ai_edge_litert import interpreter  # noqa: F401
        except ImportError:
            raise SketchBenchError(f"model '{self.name}'", "the LiteRT runtime (ai-edge-litert) is not installed",
                                   "pip install 'pytest-sketchbench[litert]'") from None

    def load(self) -> None:
        self._threads = threading.local()
        interpreter = self._open()
        self.input_detail = interpreter.get_input_details()[0]
        self.output_detail = interpreter.get_output_details()[0]
        self.shape = [int(d) for d in self.input_detail["shape_signature"]]
        self.channels_first, self.input_format = image_layout(self.shape)
        self.categories = self.sidecar_categories()

    def _open(self):
        """This thread's interpreter of the file, checked and allocated."""
        from ai_edge_litert.interpreter import Interpreter

        path = self.require_file()
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=int(self.config.get("threads") or 0) or None)
            _refuse_tensorflow_ops(interpreter, path)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # the interpreter's own errors for a bad flatbuffer
            raise SketchBenchError(f"model '{self.name}'", f"LiteRT cannot load {path} "
                                   f"({str(exc).splitlines()[0][:160]})",
                                   "the file is corrupt or not a .tflite flatbuffer; re-export it") from None
        self._threads.interpreter = interpreter
        self._threads.batch = int(interpreter.get_input_details()[0]["shape"][0])
        return interpreter

    @property
    def interpreter(self):
        """The calling thread's interpreter (opened on its first call)."""
        interpreter = getattr(self._threads, "interpreter", None)
        return interpreter if interpreter is not None else self._open()

    def input_size(self) -> tuple[int, int]:
        return (self.shape[2], self.shape[3]) if self.channels_first else (self.shape[1], self.shape[2])

    def prepare(self, images: np.ndarray) -> np.ndarray:
        batch = super().prepare(images)
        if self.channels_first:
            batch = batch.transpose(0, 3, 1, 2)
        self._fit(batch.shape)  # one resize per batch size, outside the timed call
        scale, zero = self.input_detail["quantization"]
        if self.input_detail["dtype"] != np.float32 and scale:
            batch = np.round(batch / scale + zero)
        return np.ascontiguousarray(batch.astype(self.input_detail["dtype"], copy=False))

    def _fit(self, shape: tuple[int, ...]) -> None:
        """Resize the interpreter's input to this batch size (re-allocating its tensors) when it differs."""
        interpreter = self.interpreter
        if shape[0] != self._threads.batch:
            interpreter.resize_tensor_input(self.input_detail["index"], list(shape))
            interpreter.allocate_tensors()
            self._threads.batch = shape[0]

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        self._fit(prepared.shape)  # a no-op unless a batch was prepared for another size meanwhile
        interpreter = self.interpreter
        interpreter.set_tensor(self.input_detail["index"], prepared)
        interpreter.invoke()
        output = interpreter.get_tensor(self.output_detail["index"])
        scale, zero = self.output_detail["quantization"]
        return (output.astype(np.float32) - zero) * scale if output.dtype != np.float32 and scale else output

    def describe(self) -> ModelInfo:
        from importlib.metadata import version

        return ModelInfo(self.name, self.runtime, version("ai-edge-litert"), self.input_format, self.shape,
                         self.categories, str(self.path), self.file_size(), None, "cpu",
                         extra={"input_dtype": np.dtype(self.input_detail["dtype"]).name})

    def release(self) -> None:
        self._threads = threading.local()  # this thread's interpreter goes now, the others' with their threads


def _refuse_tensorflow_ops(interpreter, path) -> None:
    """A .tflite file may embed "Select TensorFlow ops" (``Flex*``): whole TensorFlow kernels, file I/O included,
    which run wherever a Flex delegate is linked. Sketch models need LiteRT's built-in ops only, so such a file
    is refused by name before any tensor is allocated, whatever the installed interpreter would do with it."""
    flex = sorted({op["op_name"] for op in interpreter._get_ops_details() if op["op_name"].startswith("Flex")})
    if flex:
        raise SketchBenchError(str(path), f"op '{flex[0]}' is a TensorFlow op embedded in the LiteRT file"
                               + (f" (and {len(flex) - 1} more)" if len(flex) > 1 else ""),
                               "convert the model with LiteRT's built-in ops only (no SELECT_TF_OPS)")
