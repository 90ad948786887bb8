"""TorchScript models (``.pt``): the scripted module is called under ``inference_mode``."""

from __future__ import annotations

import io
import json
import posixpath
import warnings
import zipfile
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
        data = path.read_bytes()
        refuse_code_in_archive(torch, data, f"model '{self.name}' ({path})")
        try:  # from the bytes just checked, never the file again (it could change in between)
            program = torch.export.load(io.BytesIO(data))
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


# where a .pt2 archive may hold something torch unpickles, and what it may never hold at all
UNPICKLED_DIRS = ("data/sample_inputs/",)
NEVER_IN_ARCHIVE = ("data/aotinductor/", "data/executorch/", "data/mtia")  # compiled code: shared libraries
OBJECT_PREFIXES = ("custom_obj_", "opaque_obj_")  # script objects and arbitrary pickles among the constants


def refuse_code_in_archive(torch, data: bytes, where: str) -> None:
    """A ``torch.export`` archive is checked before torch opens it: torch unpickles some of its entries with
    ``weights_only=False`` (weights and constants saved with ``use_pickle``, legacy ``data/weights/<model>.pt``
    files, and example inputs after a ``weights_only=True`` attempt fails), and a pickle can run any code.
    Every entry torch would unpickle must load with ``weights_only=True`` here — then the full unpickler
    calls nothing more — and entries that are code or arbitrary objects are refused outright."""
    def refuse(problem: str) -> None:
        raise SketchBenchError(where, problem, "a .pt2 file must hold tensors and the program only; re-export it "
                               "with torch.export.save from a model you trust")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = {info.filename.split("/", 1)[1] if "/" in info.filename else info.filename: info.filename
                 for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not an archive: torch.export.load says so in its own words below
    unpickled = [name for name in names if name.startswith(UNPICKLED_DIRS)]
    for name in names:
        base = posixpath.basename(name)
        if name.startswith(NEVER_IN_ARCHIVE) or base.startswith(OBJECT_PREFIXES):
            refuse(f"entry '{name}' is compiled code or a pickled object, which loading would run")
        if name.startswith(("data/weights/", "data/constants/")) and name.endswith(".pt"):
            unpickled.append(name)  # the legacy format: a whole state dict pickled
        if name.endswith("_config.json") and name.startswith(("data/weights/", "data/constants/")):
            try:
                config = json.loads(archive.read(names[name])).get("config", {})
            except (ValueError, AttributeError):
                refuse(f"entry '{name}' is not a weights config")
            folder = posixpath.dirname(name)
            for entry in (config.values() if isinstance(config, dict) else ()):
                if isinstance(entry, dict) and entry.get("use_pickle"):
                    unpickled.append(posixpath.join(folder, str(entry.get("path_name", ""))))
    for name in unpickled:
        if name not in names:
            refuse(f"entry '{name}' is named by a config but missing")
        try:
            torch.load(io.BytesIO(archive.read(names[name])), weights_only=True)
        except Exception:  # noqa: BLE001 — any refusal of the safe unpickler: not loaded, whatever the reason
            refuse(f"entry '{name}' is a pickle that needs more than tensors (it could run code)")
