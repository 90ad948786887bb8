"""TorchScript models (``.pt``): the scripted module is called under ``inference_mode``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin


class TorchScriptModel(ModelPlugin):
    runtime = "torch"
    computes_in_process = True  # on the CPU device: its kernels run in this process
    options = ("input_shape",)
    profiler_name = "torch.profiler"

    def import_runtime(self) -> None:
        import torch  # noqa: F401

    def load(self) -> None:
        import torch

        path = self.require_file()
        if self.config.get("threads"):
            torch.set_num_threads(int(self.config["threads"]))
        wants_cuda = self.config.get("device", "cpu") != "cpu" and torch.cuda.is_available()
        self.torch_device = torch.device("cuda" if wants_cuda else "cpu")
        self.device = self.torch_device.type
        self.module, recorded = self._load_module(torch, path)
        shape = self.config.get("input_shape") or recorded
        self.shape = [None if d in (-1, None) else int(d) for d in shape]
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"
        self.categories = self.sidecar_categories()
        self.torch = torch
        if self.device == "cuda":  # the peak from here on is this model's
            torch.cuda.reset_peak_memory_stats(self.torch_device)

    def _load_module(self, torch, path: Path):
        """The scripted module and its input shape (NHWC, batch first), which our exporter records on it."""
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated upstream but is the shipped format
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location=self.torch_device).eval()
        except Exception as exc:  # torch raises RuntimeError/ValueError variants for bad archives
            raise SketchBenchError(f"model '{self.name}'", f"torch cannot load {path} ({exc.__class__.__name__})",
                                   "the file is corrupt or not TorchScript; re-export with torch.jit.save") from None
        return module, list(getattr(module, "input_shape", [-1, 28, 28, 1]))

    def input_size(self) -> tuple[int, int]:
        return int(self.shape[1]), int(self.shape[2])

    def prepare(self, images: np.ndarray):
        return self.torch.from_numpy(super().prepare(images)).to(self.torch_device)

    def infer(self, prepared) -> np.ndarray:
        with self.torch.inference_mode():
            output = self.module(prepared)
        return output.cpu().numpy() if self.device == "cpu" else output

    def synchronize(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def placement(self) -> str:
        return str(next(iter(self.module.parameters())).device) if self.module is not None else self.device

    def gpu_memory_peak_bytes(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated(self.torch_device)) if self.device == "cuda" else None

    def to_probabilities(self, raw, batch_size: int) -> np.ndarray:
        if not isinstance(raw, np.ndarray):
            raw = raw.cpu().numpy()
        return super().to_probabilities(raw, batch_size)

    def profile_operators(self, prepared, calls: int, trace_path: Path) -> dict[str, tuple[int, float]]:
        """``torch.profiler`` around the calls: a Chrome trace, and each aten operator's self time."""
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device == "cuda" else [])
        with profile(activities=activities) as profiler:
            for _ in range(calls):
                self.infer(prepared)
            self.synchronize()
        profiler.export_chrome_trace(str(trace_path))
        return {event.key: (int(event.count), event.self_cpu_time_total / 1e6) for event in profiler.key_averages()
                if event.self_cpu_time_total > 0}

    def describe(self) -> ModelInfo:
        parameters = int(sum(p.numel() for p in self.module.parameters()))
        return ModelInfo(self.name, self.runtime, self.torch.__version__, self.input_format, self.shape,
                         self.categories, str(self.path), self.file_size(), parameters, self.device)

    def release(self) -> None:
        self.module = None
        if self.device == "cuda":
            self.torch.cuda.empty_cache()



class TorchExportModel(TorchScriptModel):
    """``torch.export`` programs (``.pt2``), TorchScript's successor upstream: the input shape is read from the
    program's first user input (a dynamic batch dimension reads as -1)."""

    runtime = "torch-export"

    def _load_module(self, torch, path: Path):
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors for bad archives
            raise SketchBenchError(f"model '{self.name}'", f"torch.export cannot load {path} "
                                   f"({exc.__class__.__name__})",
                                   "the file is corrupt or not an exported program; save one with torch.export.save"
                                   ) from None
        if self.torch_device.type != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, self.torch_device)
        user_inputs = set(program.graph_signature.user_inputs)
        value = next((node.meta.get("val") for node in program.graph.nodes
                      if node.op == "placeholder" and node.name in user_inputs), None)
        shape = [-1, 28, 28, 1] if value is None else [d if isinstance(d, int) else -1 for d in value.shape]
        return program.module(), shape
