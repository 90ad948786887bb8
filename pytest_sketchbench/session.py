"""The session owns the state of a run: options, registry, dataset, loaded models, results; its collaborators
(latency timing, side-by-side timing, diagnostics, LoadGen runs) use it through :class:`.session_core.SessionCore`.

A model's results are one record keyed by model name; :mod:`.codec` spells it for xdist's process boundary, the
JSON report and the baseline file, and every reporter reads the same structure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from pytest_sketchbench import hardware
from pytest_sketchbench.baseline import BaselineComparison, load_baseline, settings_for, settings_from
from pytest_sketchbench.calibration import calibration_report
from pytest_sketchbench.config import SketchConfig
from pytest_sketchbench.content_hash import content_sha256
from pytest_sketchbench.data import Dataset, category_columns, load_dataset, no_category_list
from pytest_sketchbench.diagnostics import Diagnostics
from pytest_sketchbench.errors import (
    ModelFailure,
    ModelTimeout,
    ModelUnavailable,
    PartnerFailure,
    ServerUnreachable,
    SketchBenchError,
    redact,
)
from pytest_sketchbench.guard import deadline
from pytest_sketchbench.host_audit import HostAudit
from pytest_sketchbench.input_probe import category_order, near_chance, probe_contracts
from pytest_sketchbench.latency_runs import LatencyRuns, keep_extra_results
from pytest_sketchbench.load_runs import LoadRuns
from pytest_sketchbench.measure import (
    MB,
    AccuracyPass,
    MemoryTracker,
    accuracy_pass,
    gpu_memory,
)
from pytest_sketchbench.metrics import accuracy_report
from pytest_sketchbench.models.base import ModelPlugin
from pytest_sketchbench.options import RunSetup
from pytest_sketchbench.progress import NoProgress, StageProgress
from pytest_sketchbench.results import Accuracy, LatencyStats, Memory, ModelResult
from pytest_sketchbench.side_by_side import SideBySide


@dataclass
class Predictions:
    """One model's pass over the dataset, computed once and shared by every accuracy test."""

    model: str
    labels: np.ndarray
    categories: list[str]
    probabilities: np.ndarray | None
    predicted: np.ndarray
    report: Accuracy
    throughput: float


class SketchSession:
    def __init__(self, setup: RunSetup, placement: dict | None = None, shared: dict | None = None,
                 progress: Callable[[str], None] | None = None, status: StageProgress | None = None):
        """``placement``: this process's cores (and GPU) under xdist or ``--sketch-threads``; ``shared``: the xdist
        controller's ``{"results", "notes"}``, which its collector keeps filling; ``progress``: where slow
        preparation (rendering strokes) is said; ``status``: where the stage each model is in is shown."""
        self.setup = setup
        self.options = setup.options
        self.rootdir = setup.rootdir
        self.registry = setup.registry
        self.config: SketchConfig = setup.config
        self.selected = setup.selected
        self.hardware = hardware.detect()
        self.audit = HostAudit(self.hardware["cpu"]["logical_cores"] or 1)
        detected = hardware.classify(self.hardware["gpus"], hardware.profiles_from_config(self.config.profiles))
        self.profile = self.options.device if self.options.device and self.options.device != "gpu" else detected
        if self.options.device == "gpu" and detected == "cpu":
            raise SketchBenchError("--sketch-device=gpu", "no NVIDIA GPU detected on this machine",
                                   f"use --sketch-device=cpu ({self.hardware['gpu_note'] or 'no GPUs'})")
        self.device = "cpu" if self.profile == "cpu" else "gpu"
        self.baseline = load_baseline(self.options.baseline) if self.options.baseline else None
        self.baseline_settings = settings_from(self.config.baseline, self.config.path or "config")
        self._dataset: Dataset | None = None
        self.progress = progress
        self.status: StageProgress = status or NoProgress()
        self.loaded: dict[str, ModelPlugin] = {}
        self.trackers: dict[str, MemoryTracker] = {}
        self._predictions: dict[str, Predictions] = {}
        self.results: dict[str, ModelResult] = shared["results"] if shared is not None else {}
        self.notes: list[str] = shared["notes"] if shared is not None else []
        self.placement = placement
        self.runtimes_used: set[str] = set()  # runtimes this process has loaded a model into, so far
        self._timed_out: dict[str, str] = {}  # model → why: its later stages are not run again
        # model → why its accuracy pass failed: every later stage needing the pass gets that one line at once,
        # instead of asking a dead server or a broken model for the whole test set again
        self._failed_passes: dict[str, SketchBenchError] = {}
        self._columns: dict[str, np.ndarray | None] = {}  # model → its output column per dataset category
        self.comparison_analysis: dict | None = None  # filled once by the reports (report.analysis.comparison_of)
        self.category_limits_not_applied: list[str] = []  # the config's, for categories this dataset lacks
        # collaborators, each with its own state, using the session through what SessionCore declares
        self.side_by_side = SideBySide(self)
        self.diagnostics = Diagnostics(self, self.side_by_side)
        self.load_runs = LoadRuns(self, self.side_by_side)
        self.latency_runs = LatencyRuns(self, self.diagnostics)

    # -- data ---------------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.setup.data_path, self.options.categories or None,
                                         self.options.samples_per_category, self.options.seed, self.progress)
        return self._dataset

    def describe_setup(self) -> list[str]:
        """Header lines: which models, which config and which data — and where each came from."""
        setup = self.setup
        config = {"explicit": f"{setup.config.path} (--sketch-config)",
                  "rootdir default": f"{setup.config.path} (rootdir default)",
                  "none": f"none (no thresholds.toml at {self.rootdir}: every model is measured, not gated)"}
        data = f"{setup.data_path} ({setup.data_origin})"
        rendered = (self._dataset.meta.get("rendered_from_strokes") if self._dataset is not None else None) or []
        if rendered:
            data += f"; {len(rendered)} categories rendered from Google's stroke files ({', '.join(rendered[:4])}" \
                    + (", …)" if len(rendered) > 4 else ")")
        lines = [f"models {', '.join(self.selected)}; config {config[setup.config_origin]}", f"data {data}"]
        if self.category_limits_not_applied:
            lines.append(f"per-category limits not applied (no such category in this dataset): "
                         f"{', '.join(self.category_limits_not_applied)}")
        if self.options.threads:
            cores = (self.placement or {}).get("cores")
            lines.append(f"threads: {self.options.threads} intra-op per runtime"
                         + (f", pinned to core(s) {cores}" if cores else ""))
            if self.options.threads_requested:
                lines.append(f"warning: {self.options.threads_requested} threads asked for, but only "
                             f"{self.options.threads} cores are usable — using {self.options.threads}")
        ungated = [m for m in self.selected if not self.config.has_limits(m)]
        if ungated and setup.config_origin != "none":
            lines.append(f"{', '.join(ungated)}: no limits in the config — measured, not gated")
        return lines

    def drawings(self, count: int) -> np.ndarray:
        """The first ``count`` drawings of the test set (repeated when it holds fewer): one timed batch."""
        images = self.dataset().images
        if len(images) < count:
            images = np.resize(images, (count, *images.shape[1:]))
        return images[:count]

    def threads(self) -> int | None:
        """Intra-op threads for every runtime: --sketch-threads / the config, else the xdist worker's cores."""
        return self.options.threads or (self.placement or {}).get("threads")

    # -- results --------------------------------------------------------------------------------
    def record(self, model: str) -> ModelResult:
        """The result of ``model``, created on first use."""
        if model not in self.results:
            self.results[model] = ModelResult(model, device_profile=self.profile, parallel=self.placement,
                                              hardware=hardware.summary_line(self.hardware, self.profile))
        return self.results[model]

    # -- models ---------------------------------------------------------------------------------
    def load_model(self, name: str) -> ModelPlugin:
        """Load once; memory is tracked from just before the load to the end of the accuracy pass."""
        if name in self.loaded:
            return self.loaded[name]
        with self.guarded(name, "loading"):
            return self._load(name, self.record(name))

    def _load(self, name: str, record: ModelResult) -> ModelPlugin:
        tracker = None
        try:
            plugin = self.registry[name].create()
            plugin.config.setdefault("device", self.device)
            threads = self.threads()
            if threads:
                plugin.config.setdefault("threads", threads)
                for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # oneDNN/MKL pools, read at import
                    os.environ.setdefault(variable, str(threads))
            try:
                plugin.import_runtime()
            except ModuleNotFoundError as exc:
                raise SketchBenchError(f"model '{name}'", f"its runtime is not installed ({exc})",
                                       self.registry[name].install_hint()) from None
            # what this process had already run shapes a model's RSS growth (shared libraries, allocator
            # arenas): recorded, so that a baseline compares memory only in the same context
            record.memory_context = sorted(self.runtimes_used)
            self.runtimes_used.add(plugin.runtime)
            tracker = MemoryTracker().__enter__()
            started = time.perf_counter()
            try:
                plugin.load()
            except ServerUnreachable as exc:
                if self.setup.options.models.strip() != "all":
                    raise
                raise ModelUnavailable(exc.subject, exc.problem, exc.fix) from None
            load_s = time.perf_counter() - started
            record.model_info, record.load_s, record.device = plugin.describe().as_dict(), load_s, plugin.device
            record.placement, record.model_sha256 = plugin.placement(), content_sha256(plugin.config.get("path"))
            self._check_placement(name, plugin)
            if plugin.categories is None and plugin.local:  # API models take the dataset's list themselves
                raise no_category_list(name, plugin.path, self.dataset())
            self._columns[name] = category_columns(self.dataset(), name, plugin.categories,
                                                   bool(plugin.config.get("strict_categories")))
            self._describe_mapping(record, plugin.categories)
        except BaseException:
            if tracker is not None:
                tracker.__exit__(None, None, None)
            raise
        self.trackers[name] = tracker
        self.loaded[name] = plugin
        return plugin

    def _check_placement(self, name: str, plugin: ModelPlugin) -> None:
        """A model asked to run on a GPU that its runtime placed on the CPU would be timed and reported as a GPU
        figure: an error, unless ``allow_cpu_fallback = true`` (then said in the notes)."""
        if self.device != "gpu" or not plugin.local or plugin.device != "cpu":
            return
        if not plugin.config.get("allow_cpu_fallback"):
            raise SketchBenchError(f"model '{name}'", f"the run asks for the GPU ({self.profile}) but {plugin.runtime} "
                                   f"placed the model on the CPU ({plugin.placement()})",
                                   "install the runtime's GPU build (e.g. pip install 'pytest-sketchbench[gpu]' for "
                                   f"onnxruntime-gpu), or set allow_cpu_fallback = true in [models.{name}]")
        self.notes.append(f"{name} runs on the CPU on this GPU host (allow_cpu_fallback = true): its figures are "
                          "CPU figures")

    @contextmanager
    def guarded(self, name: str, stage: str) -> Iterator[None]:
        """Run one stage of a model (loading, the accuracy pass, a timing) under its deadline.

        Whatever goes wrong is recorded on the model's result once — a skip, our own error, or any other
        exception turned into one line naming its type and place — so that no report reads "passed".
        """
        if name in self._timed_out:
            raise ModelTimeout(f"model '{name}'", f"{stage} not run: {self._timed_out[name]}")
        try:
            seconds, option = self.deadline_of(name)
            self.status.start(name, stage)
            try:
                with deadline(seconds, name, stage, option):
                    yield
            finally:
                self.status.end()
        except PartnerFailure:  # the other model's failure: its caller records it there
            raise
        except ModelUnavailable as exc:
            self.note(name, "skipped", str(exc))
            raise
        except SketchBenchError as exc:
            self.note(name, "errors", str(exc))
            if isinstance(exc, ModelTimeout):
                self._timed_out[name] = f"{stage} timed out"
            raise
        except Exception as exc:
            failure = ModelFailure.from_exception(name, stage, exc)
            self.note(name, "errors", str(failure))
            raise failure from exc

    def deadline_of(self, name: str) -> tuple[float | None, str]:
        """The model's deadline per stage and the option that sets it (``timeout_s``, default 600 s; served and API
        models: ``stage_timeout_s``, their ``timeout_s`` bounds one request)."""
        spec = self.registry.specs.get(name)
        if spec is None:
            return None, "timeout_s"
        plugin_class = spec.plugin_class()
        return plugin_class.stage_deadline_s(spec.config), plugin_class.stage_timeout_option

    def note(self, name: str, key: str, message: str) -> None:
        """An error or a skip on the model's result (``key``: "errors" or "skipped")."""
        entries = self.record(name).errors if key == "errors" else self.record(name).skipped
        message = redact(message)
        if message not in entries:  # a stage nested in another reports once
            entries.append(message)

    def _describe_mapping(self, record: ModelResult, model_categories: list[str] | None) -> None:
        """Say how the model's classes were matched (nothing when they are the dataset's own list)."""
        columns, dataset = self._columns[record.model], self.dataset()
        if columns is None:
            return
        extra = len(set(range(len(model_categories))) - set(columns.tolist()))
        text = (f"by name, closed-set: the best of the dataset's categories ({extra} more model classes ignored)"
                if extra else "by name")
        left_out = [c for c, column in zip(dataset.categories, columns, strict=True) if column < 0]
        if left_out:
            count = int(np.isin(dataset.labels, [dataset.categories.index(c) for c in left_out]).sum())
            text += f"; {count} drawings of {', '.join(left_out)} left out (the model has no such class)"
            record.categories_left_out = left_out
        record.category_mapping = text

    def model_dataset(self, name: str) -> tuple[Dataset, np.ndarray | None]:
        """The drawings a model is scored on, and its output column per category: all of them, unless the
        model lacks some categories (their drawings are then left out, as its record says)."""
        dataset, columns = self.dataset(), self._columns.get(name)
        if columns is None or (columns >= 0).all():
            return dataset, columns
        known = [c for c, column in zip(dataset.categories, columns, strict=True) if column >= 0]
        return dataset.only(known), columns[columns >= 0]

    def predictions(self, name: str) -> Predictions:
        if name in self._predictions:
            return self._predictions[name]
        if name in self._failed_passes:
            raise self._failed_passes[name]
        plugin = self.load_model(name)
        dataset, columns = self.model_dataset(name)
        try:
            with self.guarded(name, "the accuracy pass"):
                self.diagnostics.first_call(name, plugin)
                plugin.before_accuracy_pass(dataset)
                try:
                    result: AccuracyPass = accuracy_pass(plugin, dataset, self.options.eval_batch_size, columns,
                                                         self.status.advance)
                finally:
                    keep_extra_results(self.record(name), plugin)
                plugin.after_accuracy_pass()
        except SketchBenchError as exc:
            self._failed_passes[name] = exc
            raise
        finally:
            self.finish_memory(name)
        open_gated = plugin.config.get("category_mode") == "open" and result.open_predicted is not None
        if open_gated:  # the user asked for the open-set figure to be the one scored and gated
            result = replace(result, predicted=result.open_predicted)
        report = accuracy_report(result.probabilities, result.predicted, dataset.labels, dataset.categories)
        report.top_k_applicable = result.probabilities is not None
        if result.probabilities is not None and not open_gated:  # closed-set probabilities, in the dataset's order
            report.calibration = calibration_report(result.probabilities, dataset.labels, self.options.seed)
        if result.open_predicted is not None:  # the model knows more classes than the dataset
            report.open_set = {"accuracy": float(np.mean(result.open_predicted == dataset.labels)),
                                  "outside_rate": float(np.mean(result.open_predicted < 0)), "gated": open_gated}
        if dataset.exact is not None and not dataset.exact.all():
            exact = dataset.exact
            correct = result.predicted == dataset.labels
            report.accuracy_by_rendering = {
                "exact": float(correct[exact].mean()) if exact.any() else None,
                "approximate": float(correct[~exact].mean()),
            }
        record = self.record(name)
        record.accuracy = report
        if plugin.outputs_probabilities and plugin.local and near_chance(report.accuracy, len(dataset.categories)):
            with self.guarded(name, "probing input contracts"):
                diagnosis = probe_contracts(plugin, dataset, columns, report.accuracy)
            diagnosis["category_order"] = category_order(dataset.labels, result.predicted, dataset.categories)
            record.input_diagnosis = diagnosis
        limits = self.config.limits_for(name, self.profile)
        record.category_limits = {c: limits.category_limit(c) for c in dataset.categories}
        record.accuracy_pass = {"seconds": result.seconds, "throughput_per_s": result.throughput,
                                "batch_size": self.options.eval_batch_size, "n_samples": len(dataset)}
        record.predicted = result.predicted.astype(int).tolist()
        record.dataset_fingerprint = dataset.fingerprint()
        predictions = Predictions(name, dataset.labels, dataset.categories, result.probabilities,
                                  result.predicted, report, result.throughput)
        self._predictions[name] = predictions
        return predictions

    def finish_memory(self, name: str) -> Memory | None:
        tracker = self.trackers.pop(name, None)
        record = self.record(name)
        if tracker is not None:
            tracker.__exit__(None, None, None)
            record.memory = Memory(rss_before_mb=tracker.start_bytes / MB, peak_rss_mb=tracker.peak_bytes / MB,
                                   peak_growth_mb=tracker.growth_mb)
            plugin = self.loaded.get(name)
            if plugin is not None and plugin.device not in ("cpu", "remote", "cloud"):  # served/API: no GPU here
                record.gpu_memory = gpu_memory(plugin)
        return record.memory

    def measure_latency(self, name: str, batch_size: int, benchmark=None) -> LatencyStats:
        """The model's latency at ``batch_size``, timed once per run (later tests reuse the figures)."""
        with self.guarded(name, f"timing batch {batch_size}"):
            return self.latency_runs.measure(name, batch_size, benchmark)

    def baseline_for(self, name: str) -> BaselineComparison | None:
        """The comparison for one model, after refusing a baseline made on another test set."""
        if self.baseline is None:
            return None
        if self.record(name).categories_left_out:
            raise ModelUnavailable(f"model '{name}'", "not compared with the baseline: it is scored on part of "
                                   "the test set (categories left out)", "")
        if name not in self.baseline["models"]:
            raise ModelUnavailable(f"model '{name}'", f"not in the baseline {self.options.baseline}",
                                   "save a new baseline that includes it")
        comparison = BaselineComparison(self.baseline, settings_for(self.baseline_settings, name), name,
                                        self.profile, self.options.baseline)
        dataset = self.dataset()
        comparison.check_dataset(dataset.fingerprint(), dataset.categories)
        return comparison

    @property
    def loaded_dataset(self) -> Dataset | None:
        """The dataset if this process loaded it (reports never load it themselves)."""
        return self._dataset

    def release(self, name: str) -> None:
        plugin = self.loaded.pop(name, None)
        self.finish_memory(name)
        if plugin is not None:
            plugin.release()

    def scored(self, name: str) -> Predictions | None:
        """The model's accuracy pass if this run has made it (never starts one)."""
        return self._predictions.get(name)

    # -- what benchmark files and reports ask of the collaborators --------------------------------
    def speed_index(self) -> dict | None:
        return self.side_by_side.speed_index()

    @property
    def measured_speed_index(self) -> dict | None:
        return self.side_by_side.measured_speed_index

    def host_audit(self) -> dict:
        return self.side_by_side.host_audit()
