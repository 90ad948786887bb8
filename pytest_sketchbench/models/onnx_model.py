"""ONNX Runtime models (``.onnx``): calls go straight to ``InferenceSession.run``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin, image_layout


class OnnxModel(ModelPlugin):
    runtime = "onnxruntime"
    computes_in_process = True  # on the CPU device: its kernels run in this process
    contention_allowance = 1.35  # measured ×1.31 (cnn.onnx, 4 busy loops on 2 cores)
    options = ("providers", "spinning")
    profiler_name = "ONNX Runtime profiler"

    def import_runtime(self) -> None:
        import onnxruntime  # noqa: F401

    def load(self) -> None:
        self.session = self._session()
        used = self.session.get_providers()[0]
        self.device = "cuda" if used.startswith("CUDA") else "cpu"
        model_input = self.session.get_inputs()[0]
        self.input_name, self.output_name = model_input.name, self.session.get_outputs()[0].name
        self.shape = list(model_input.shape)
        self.channels_first, self.input_format = image_layout(self.shape)
        self.categories = self.sidecar_categories() or self._metadata_categories()

    def _session(self, profile_prefix: str | None = None):
        """An InferenceSession with this model's settings (a profiling one when ``profile_prefix`` is given)."""
        import onnxruntime as ort

        path = self.require_file()
        options = ort.SessionOptions()
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        if self.config.get("threads"):
            options.intra_op_num_threads = int(self.config["threads"])
            options.inter_op_num_threads = 1
        if self.config.get("spinning") is False:  # idle pool threads sleep instead of spinning on the cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = ort.get_available_providers()
        wanted = self.config.get("providers") or (
            ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.config.get("device", "cpu") != "cpu"
            else ["CPUExecutionProvider"]
        )
        providers = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        try:
            return ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise SketchBenchError(f"model '{self.name}'", f"ONNX Runtime cannot load {path} ({exc})",
                                   "the file is corrupt or not ONNX; re-export it") from None

    def profile_operators(self, prepared: dict, calls: int, trace_path: Path) -> dict[str, tuple[int, float]]:
        """A session of its own with ONNX Runtime's profiler on (the timed session never profiles)."""
        from pytest_sketchbench.files import write_file

        with tempfile.TemporaryDirectory() as folder:
            session = self._session(profile_prefix=str(Path(folder) / "ort"))
            for _ in range(calls):
                session.run([self.output_name], prepared)
            events = json.loads(Path(session.end_profiling()).read_text())
        write_file(trace_path, json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))
        return kernel_totals(events)

    def _metadata_categories(self) -> list[str] | None:
        value = self.session.get_modelmeta().custom_metadata_map.get("categories")
        return value.split(",") if value else None

    def input_size(self) -> tuple[int, int]:
        height, width = (self.shape[2], self.shape[3]) if self.channels_first else (self.shape[1], self.shape[2])
        return int(height), int(width)

    def prepare(self, images: np.ndarray) -> dict:
        batch = super().prepare(images)
        if self.channels_first:
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return {self.input_name: batch}

    def placement(self) -> str:
        return f"ONNX Runtime providers {self.session.get_providers()}"

    def infer(self, prepared: dict) -> np.ndarray:
        return self.session.run([self.output_name], prepared)[0]

    def describe(self) -> ModelInfo:
        import onnxruntime as ort

        return ModelInfo(self.name, self.runtime, ort.__version__, self.input_format, self.shape, self.categories,
                         str(self.path), self.file_size(), self._parameter_count(), self.device,
                         extra={"providers": self.session.get_providers()})

    def _parameter_count(self) -> int | None:
        """Weights of any precision (int8 after quantization), not quantization scales/zero points.

        Needs the ``onnx`` package, which the ``[onnx]`` extra does not install (ONNX Runtime alone
        runs the model): without it the count is simply not reported.
        """
        try:
            import onnx
        except ImportError:
            return None
        try:
            graph = onnx.load(str(self.path), load_external_data=False).graph
            return int(sum(np.prod(t.dims) for t in graph.initializer
                           if "scale" not in t.name and "zero_point" not in t.name))
        except Exception:  # parameter count is informative only
            return None

    def release(self) -> None:
        self.session = None


def kernel_totals(events: list[dict]) -> dict[str, tuple[int, float]]:
    """ONNX Runtime trace events → time per operator type (its kernel events do not nest)."""
    totals: dict[str, list] = {}
    for event in events:
        op = (event.get("args") or {}).get("op_name")
        if event.get("cat") == "Node" and op and str(event.get("name", "")).endswith("_kernel_time"):
            entry = totals.setdefault(op, [0, 0.0])
            entry[0] += 1
            entry[1] += float(event.get("dur", 0)) / 1e6
    return {op: (calls, seconds) for op, (calls, seconds) in totals.items()}
