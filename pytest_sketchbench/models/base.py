"""The one small interface every model plugin implements.

A plugin is split so the benchmark can time exactly the runtime call:
``prepare`` (preprocessing, untimed) → ``infer`` (the runtime, timed) →
``to_probabilities`` (checks and softmax, untimed). ``predict`` chains them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pytest_sketchbench import preprocess
from pytest_sketchbench.data import read_category_file
from pytest_sketchbench.errors import ModelOutputError, SketchBenchError
from pytest_sketchbench.files import is_stream
from pytest_sketchbench.guard import DEFAULT_TIMEOUT_S

FLAG_OPTIONS = ("strict_categories", "allow_cpu_fallback", "trust_model", "spinning")  # a quoted "false" is truthy
MAX_INPUT_SIDE = 4096  # pixels per side of a model's input: far above any sketch model


def image_layout(shape: list) -> tuple[bool, str]:
    """(channels first?, "rgb" or "grayscale") from a model's 4-D input shape: NCHW when dimension 1
    holds 1 or 3 channels and the last does not (dimensions may be symbolic: names or None)."""
    channels_first = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
    channels = shape[1] if channels_first else shape[-1]
    return channels_first, "rgb" if channels == 3 else "grayscale"


QUANTIZED_SUM_TOLERANCE = 0.05  # measured: cnn-int8.onnx rows sum to 0.969–1.027 (uint8 softmax, 23 classes)


@dataclass
class ModelInfo:
    """What a model says about itself; lands in every report."""

    name: str
    runtime: str
    runtime_version: str
    input_format: str
    input_shape: list[int | None]
    categories: list[str] | None
    file: str | None = None
    file_size_bytes: int | None = None
    parameter_count: int | None = None
    device: str = "cpu"
    outputs_probabilities: bool = True
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class ModelPlugin(ABC):
    """Base class of model plugins; subclasses implement ``load``, ``infer`` and ``describe``."""

    runtime: ClassVar[str] = "custom"
    input_format: ClassVar[str] = "grayscale"  # one of preprocess.FORMATS
    #: False for models that answer with a class, not a distribution (top-k is then not applicable).
    outputs_probabilities: ClassVar[bool] = True
    #: Config keys this plugin understands besides the common ones.
    options: ClassVar[tuple[str, ...]] = ()
    common_options: ClassVar[tuple[str, ...]] = ("path", "plugin", "runtime", "categories", "device", "threads",
                                                 "timeout_s", "strict_categories", "category_mode",
                                                 "allow_cpu_fallback", "ink", "value_range")
    local: ClassVar[bool] = True  # runs in this process (not a served or API model)
    # all its work is this process's CPU time, so that CPU time can time it: the built-in CPU runtimes say so;
    # a plugin that waits (a server, an API, a sleep) must not, and an unknown one is timed on the wall clock
    computes_in_process: ClassVar[bool] = False
    # how far a busy host can move its CPU time per call relative to the calibration network (a neighbour evicts
    # its weights from the caches): on an unfit host a CPU-time ratio is decided only beyond its limit by this
    # factor, either way. Measured at 4 busy loops on the 2-core EPYC (scripts/measure_clock_bias.py): ONNX
    # Runtime ×1.31, TensorFlow ×1.66; the default is the larger, for runtimes not measured
    contention_allowance: ClassVar[float] = 1.7
    #: The option holding the per-stage deadline (a served model's ``timeout_s`` bounds each request instead).
    stage_timeout_option: ClassVar[str] = "timeout_s"
    #: An API model times its own requests (``measured_latencies``) instead of being timed call by call.
    times_own_requests: ClassVar[bool] = False
    profiler_name: ClassVar[str | None] = None  # the runtime's operator profiler, where profile_operators has one
    #: It times itself beside its own copy of the calibration network (``time_beside_calibration``): a runtime
    #: whose calls cross a process boundary (a browser page) would otherwise be timed with that crossing.
    times_calibration_itself: ClassVar[bool] = False
    results_key: ClassVar[str] = "api"  # where ``extra_results`` lands in the model's record

    def __init__(self, name: str, config: dict[str, Any]):
        self.name = name
        self.config = dict(config)
        self.validate_config(self.config)
        self.device = "cpu"
        self.categories: list[str] | None = None

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Reject unknown keys and missing files early, with the model's name in the message."""
        unknown = sorted(set(config) - set(cls.common_options) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(set(cls.common_options) | set(cls.options)))
            raise SketchBenchError(f"{cls.__name__} config", f"unknown option(s) {', '.join(unknown)}",
                                   f"known options: {known}")
        if config.get("category_mode", "closed") not in ("closed", "open"):
            raise SketchBenchError(f"{cls.__name__} config", f"category_mode = {config['category_mode']!r}",
                                   'use "closed" (the best of the dataset\'s categories) or "open"')
        if config.get("ink", preprocess.INKS[0]) not in preprocess.INKS:
            raise SketchBenchError(f"{cls.__name__} config", f"ink = {config['ink']!r}",
                                   f"use one of {', '.join(map(repr, preprocess.INKS))}")
        if config.get("value_range", "0-1") not in preprocess.VALUE_RANGES:
            raise SketchBenchError(f"{cls.__name__} config", f"value_range = {config['value_range']!r}",
                                   f"use one of {', '.join(map(repr, preprocess.VALUE_RANGES))}")
        for key in FLAG_OPTIONS:
            if key in config and not isinstance(config[key], bool):
                raise SketchBenchError(f"{cls.__name__} config", f"{key} = {config[key]!r} is not true or false",
                                       f"write {key} = true (or false), unquoted")
        threads = config.get("threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise SketchBenchError(f"{cls.__name__} config", f"threads = {threads!r} is not a whole number >= 1",
                                   "give intra-op threads, e.g. threads = 1")
        if config.get("device", "cpu") not in ("cpu", "gpu"):
            raise SketchBenchError(f"{cls.__name__} config", f"device = {config['device']!r}", 'use "cpu" or "gpu"')
        for key in dict.fromkeys(("timeout_s", cls.stage_timeout_option)):
            timeout = config.get(key)
            if timeout is not None and not (isinstance(timeout, int | float) and not isinstance(timeout, bool)
                                            and math.isfinite(timeout) and timeout > 0):
                raise SketchBenchError(f"{cls.__name__} config", f"{key} = {timeout!r} is not a positive number",
                                       f"give seconds, e.g. {key} = 600")

    @classmethod
    def stage_deadline_s(cls, config: dict[str, Any]) -> float:
        """Seconds one stage (loading, the accuracy pass, one timing) may run before it is recorded as timed out."""
        return float(config.get(cls.stage_timeout_option, DEFAULT_TIMEOUT_S))

    @property
    def path(self) -> Path | None:
        value = self.config.get("path")
        return Path(value) if value else None

    def require_file(self) -> Path:
        """The model file, or an error that names it and says how to get it."""
        path = self.path
        if path is None:
            raise SketchBenchError(f"model '{self.name}'", "no 'path' configured",
                                   f"set path in [models.{self.name}] of the config file")
        if not path.exists():
            raise SketchBenchError(f"model '{self.name}'", f"file not found: {path}",
                                   "check the path, or re-create it with the recipe in models/README.md")
        if is_stream(path):
            raise SketchBenchError(f"model '{self.name}'", f"{path} is not a regular file or folder (a pipe, "
                                   "device or socket)", "point path at the model file itself")
        return path

    # -- the runtime ---------------------------------------------------------------------
    def import_runtime(self) -> None:
        """Import the runtime's libraries; called before memory tracking so the import is not billed
        to whichever model happens to load first."""

    @abstractmethod
    def load(self) -> None:
        """Load the model into its runtime (and onto ``self.device``)."""

    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects; RGB models read it from the model itself."""
        return (28, 28)

    def checked_input_size(self) -> tuple[int, int]:
        """The declared input size, refused when it is not a sane image size (a corrupt or hostile model
        could declare terabytes, which preprocessing would try to allocate)."""
        try:
            height, width = (int(side) for side in self.input_size())
        except (TypeError, ValueError, OverflowError):
            height = width = -1
        if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE):
            raise SketchBenchError(f"model '{self.name}'", f"declares an input of {self.input_size()} pixels",
                                   f"an input side must be 1–{MAX_INPUT_SIDE} pixels; check the model's input shape")
        return height, width

    def prepare(self, images: np.ndarray) -> Any:
        """Preprocess a batch of uint8 drawings (N, 28, 28) into the runtime's input."""
        if self.input_format in ("grayscale", "rgb"):
            batch = (preprocess.to_grayscale(images) if self.input_format == "grayscale"
                     else preprocess.to_rgb(images, *self.checked_input_size()))
            return preprocess.apply_contract(batch, self.input_format, self.config.get("ink"),
                                             self.config.get("value_range"))
        if self.input_format == "png":
            return preprocess.to_png_base64(images)
        raise SketchBenchError(f"model '{self.name}'", f"unknown input format '{self.input_format}'",
                               f"use one of {', '.join(preprocess.FORMATS)}")

    @abstractmethod
    def infer(self, prepared: Any) -> np.ndarray:
        """Run the runtime on a prepared batch and return its raw output — the timed call."""

    def synchronize(self) -> None:
        """Wait for queued device work (GPU runtimes override this)."""

    def placement(self) -> str:
        """Where the runtime says the model runs, in its own words (read back after loading, never assumed)."""
        return self.device

    def gpu_memory_peak_bytes(self) -> int | None:
        """The runtime's own allocator peak on the GPU since loading, where it has one (else None: NVML's
        per-process figure is reported alone)."""
        return None

    def to_probabilities(self, raw: Any, batch_size: int) -> np.ndarray:
        """Turn raw outputs into probabilities; NaN/inf or a wrong shape is an error naming the model."""
        output = np.asarray(raw, dtype=np.float64)
        n_classes = len(self.categories) if self.categories else output.shape[-1]
        if output.ndim != 2 or output.shape != (batch_size, n_classes):
            raise ModelOutputError(f"model '{self.name}'",
                                   f"output shape {output.shape}, expected ({batch_size}, {n_classes})",
                                   "the model must output one score per category")
        if not np.all(np.isfinite(output)):
            bad = int(np.sum(~np.isfinite(output).all(axis=1)))
            raise ModelOutputError(f"model '{self.name}'", f"NaN or inf in the outputs of {bad} drawing(s)",
                                   "check the model file and its input format")
        # Probabilities as an int8 model gives them are quantized (steps of 1/255): a row sums to 1 only within a few
        # steps. Such rows are renormalised, never passed through a second softmax (which flattened cnn-int8's
        # confidences to ~0.1 and made its |Δp| to cnn 0.89).
        sums = output.sum(axis=1)
        if np.all(output >= 0) and np.all(output <= 1 + 1e-6) and np.all(np.abs(sums - 1.0) <= QUANTIZED_SUM_TOLERANCE):
            return output / sums[:, None]
        shifted = output - output.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    def measured_latencies(self) -> list[float]:
        """Per-request seconds, for a plugin that ``times_own_requests``."""
        raise NotImplementedError

    def to_labels(self, raw) -> np.ndarray:
        """Class-only models (``outputs_probabilities = False``): raw output → label per drawing, -1 = invalid."""
        raise NotImplementedError

    def before_accuracy_pass(self, dataset) -> None:
        """Called with the dataset before the accuracy pass (API models take its categories, check budgets)."""

    def after_accuracy_pass(self) -> None:
        """Called after the accuracy pass: an API model refuses a pass in which no request was answered."""

    def profile_operators(self, prepared: Any, calls: int, trace_path: Path) -> dict[str, tuple[int, float]] | None:
        """Run ``calls`` inferences under the runtime's own operator profiler, write its Chrome trace
        (``{"traceEvents": [...]}``) to ``trace_path`` and return ``{operator: (calls, self seconds)}``;
        None where the runtime has no such profiler (``--sketch-profile`` then takes the Python profile only)."""
        return None

    def time_beside_calibration(self, prepared: Any, rounds: int) -> tuple[list[float], list[float]]:
        """``rounds`` interleaved pairs, in seconds: this model on ``prepared``, then the calibration network on
        as many drawings (alternating which goes first), both inside the runtime; for ``times_calibration_itself``."""
        raise NotImplementedError(f"{type(self).__name__} does not time the calibration network itself")

    def extra_results(self) -> dict | None:
        """Model-specific figures for the reports (API models: success rate, retries, tokens, cost)."""
        return None

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_categories) for a batch of drawings."""
        raw = self.infer(self.prepare(images))
        self.synchronize()
        return self.to_probabilities(raw, len(images))

    @abstractmethod
    def describe(self) -> ModelInfo:
        """Name, runtime, version, input format and shape, classes, file size, parameters."""

    def release(self) -> None:
        """Free the runtime's resources; called once at the end of the model's tests."""

    # -- helpers for subclasses ----------------------------------------------------------
    def read_categories(self, candidates: list[Path]) -> list[str] | None:
        """The category order recorded beside the model (config wins over files)."""
        configured = self.config.get("categories")
        if isinstance(configured, list):
            return [str(c) for c in configured]
        if isinstance(configured, str):
            candidates = [Path(configured)]
        for candidate in candidates:
            if candidate.is_file():
                return read_category_file(candidate, text_lines=True)
        if isinstance(configured, str):
            raise SketchBenchError(f"model '{self.name}'", f"categories file {configured} not found",
                                   "give a .json list or a text file with one category name per line")
        return None

    def file_size(self) -> int | None:
        path = self.path
        if path is None or not path.exists():
            return None
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size

    def sidecar_categories(self) -> list[str] | None:
        """``<stem>.classes.json`` or ``classes.json`` beside the model file."""
        path = self.path
        if path is None:
            return self.read_categories([])
        stem = path.name.split(".")[0].split("-")[0]
        return self.read_categories([path.with_name(f"{stem}.classes.json"), path.with_name("classes.json")])
