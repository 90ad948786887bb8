"""Saved baselines and regressions judged with statistics, not single point estimates.

Baseline file (``--sketch-save-baseline PATH``): gzip-compressed JSON, ``format = "sketchbench-baseline/1"``::

    {"format", "created", "git_commit", "device_profile", "hardware", "library_versions",
     "dataset": {"fingerprint", "categories", "n_samples"},
     "models": {name: {"predicted": [label per drawing, test-set order], "labels_fingerprint",
                       "latency_samples_s": {batch: [seconds…]}, "peak_growth_mb", "model_size_bytes",
                       "load_s", "accuracy"}}}

Decisions (``--sketch-baseline PATH``):
- accuracy: McNemar's exact test on the paired per-drawing outcomes; a regression needs a drop
  larger than ``accuracy_margin`` *and* p < ``alpha``;
- latency: one-sided Mann–Whitney U on the raw samples; a regression needs median ratio >
  ``latency_max_ratio`` *and* p < ``alpha``; different device profiles are not compared unless forced;
- memory / size: plain margins. Improvements are reported, never failed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pytest_sketchbench.codec import baseline_entry, baseline_models_in, baseline_models_out
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.results import MEMORY_NOISE_MB, BaselineEntry, BaselineRow, CategoryChange, Memory
from pytest_sketchbench.stats import mcnemar_exact

FORMAT = "sketchbench-baseline/1"
DEFAULTS = {"accuracy_margin": 0.005, "alpha": 0.01, "latency_max_ratio": 1.10, "ab_latency_max_ratio": 1.2,
            "memory_margin": 0.25,
            "memory_floor_mb": MEMORY_NOISE_MB, "size_margin": 0.05, "gate": ["accuracy", "latency", "memory", "size"],
            "compare_across_profiles": False, "category_alpha": 0.01}


def settings_from(table: dict, where: str) -> dict:
    """``[baseline]`` settings; ``[baseline.models.<name>]`` overrides them for one model."""
    table = dict(table)
    per_model = table.pop("models", {})
    for name, override in [("", table), *((f".models.{m}", o) for m, o in per_model.items())]:
        unknown = sorted(set(override) - set(DEFAULTS))
        if unknown:
            raise SketchBenchError(f"{where} [baseline{name}]", f"unknown key(s) {', '.join(unknown)}",
                                   f"known keys: {', '.join(DEFAULTS)}")
        for key, value in override.items():
            _check_setting(f"{where} [baseline{name}]", key, value)
    return {**DEFAULTS, **table, "models": per_model}


GATES = ("accuracy", "latency", "memory", "size")


def _check_setting(where: str, key: str, value) -> None:
    """Typed by meaning: a mistyped value must never switch a gate off silently (``gate = "accuracy"``
    as a string once turned every gate off)."""
    default = DEFAULTS[key]
    if isinstance(default, list):
        if not isinstance(value, list) or any(v not in GATES for v in value):
            raise SketchBenchError(where, f"'{key}' must be a list drawn from {', '.join(GATES)}, got {value!r}",
                                   f'e.g. {key} = ["accuracy", "latency"]')
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise SketchBenchError(where, f"'{key}' must be true or false, got {value!r}", f"e.g. {key} = false")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise SketchBenchError(where, f"'{key}' must be a finite number >= 0, got {value!r}", f"e.g. {key} = {default}")


def settings_for(settings: dict, model: str) -> dict:
    return {**settings, **settings.get("models", {}).get(model, {})}


# -- statistics (pure) ---------------------------------------------------------------------------
def latency_shift(baseline_s, current_s) -> dict:
    """Is the current run slower? Median ratio and one-sided Mann–Whitney U p-value."""
    from scipy import stats  # here, not at import: scipy.stats costs every pytest process ~0.5 s

    baseline_s, current_s = np.asarray(baseline_s, float), np.asarray(current_s, float)
    ratio = float(np.median(current_s) / np.median(baseline_s))
    p_slower = float(stats.mannwhitneyu(current_s, baseline_s, alternative="greater").pvalue)
    p_faster = float(stats.mannwhitneyu(current_s, baseline_s, alternative="less").pvalue)
    return {"ratio": ratio, "p_value": p_slower, "p_faster": p_faster,
            "baseline_median_ms": float(np.median(baseline_s) * 1000),
            "current_median_ms": float(np.median(current_s) * 1000)}


def accuracy_verdict(result: dict, margin: float, alpha: float) -> str:
    if result["change"] < -margin and result["p_value"] < alpha:
        return "regression"
    if result["change"] > margin and result["p_value"] < alpha:
        return "improvement"
    if result["p_value"] < alpha:
        return "significant, within margin"
    return "no significant change"


def deciding_p(result: dict) -> tuple[float, str]:
    """The one-sided p-value in the direction the medians moved, and the test's name: the figure a
    report prints beside a latency verdict is the one that decided it."""
    if result["ratio"] >= 1:
        return result["p_value"], "Mann–Whitney U, one-sided: slower"
    return result["p_faster"], "Mann–Whitney U, one-sided: faster"


def latency_verdict(result: dict, max_ratio: float, alpha: float) -> str:
    p_value, _ = deciding_p(result)
    if result["ratio"] > max_ratio and p_value < alpha:
        return "regression"
    if result["ratio"] < 1 / max_ratio and p_value < alpha:
        return "improvement"
    if p_value < alpha:
        return "significant, within tolerance"
    return "no significant change"


def machine_identity(hardware: dict) -> str:
    """What makes latencies comparable: CPU model and core count, GPU names."""
    cpu = hardware.get("cpu", {})
    gpus = "+".join(g.get("name", "?") for g in hardware.get("gpus", [])) or "no GPU"
    return f"{cpu.get('model')} ×{cpu.get('logical_cores')}, {gpus}"


# -- files ---------------------------------------------------------------------------------------
def build_baseline(sketch) -> dict:
    from pytest_sketchbench.hardware import git_commit, library_versions

    dataset = sketch.dataset()
    models = {}
    for name, record in sketch.results.items():
        if record.predicted is None:
            continue
        if record.errors:
            sketch.notes.append(f"{name} not saved in the baseline: it had errors ({record.errors[0][:120]})")
            continue
        if record.categories_left_out:
            sketch.notes.append(f"{name} not saved in the baseline: it was scored on part of the test set")
            continue
        models[name] = baseline_entry(record)
    return {"format": FORMAT, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(sketch.rootdir), "device_profile": sketch.profile,
            "hardware": sketch.hardware, "library_versions": library_versions(),
            "machine_speed_index": sketch.measured_speed_index,  # a report never starts a measurement
            "dataset": {"fingerprint": dataset.fingerprint(), "categories": dataset.categories,
                        "n_samples": len(dataset)},
            "models": models}


def _runtimes(names: list[str]) -> str:
    return ", ".join(names) if names else "nothing else"


def baseline_bytes(baseline: dict) -> bytes:
    """The baseline file's content (gzipped JSON); a baseline without a model is refused, not saved."""
    if not baseline["models"]:
        raise SketchBenchError("--sketch-save-baseline", "no model could be saved (see the notes above)",
                               "the previous baseline file is kept")
    stored = {**baseline, "models": baseline_models_out(baseline["models"])}
    return gzip.compress(json.dumps(stored, separators=(",", ":")).encode(), compresslevel=9, mtime=0)


def load_baseline(path: str | Path) -> dict:
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            baseline = json.load(handle)
    except FileNotFoundError:
        raise SketchBenchError(str(path), "baseline file not found",
                               "create one with --sketch-save-baseline on the reference commit") from None
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SketchBenchError(str(path), f"not a readable baseline ({exc.__class__.__name__})",
                               "re-create it with --sketch-save-baseline") from None
    if not isinstance(baseline, dict) or baseline.get("format") != FORMAT:
        found = baseline.get("format") if isinstance(baseline, dict) else type(baseline).__name__
        raise SketchBenchError(str(path), f"unknown baseline format {found!r}",
                               f"expected {FORMAT}; re-create it with this version")
    problem = _schema_problem(baseline)
    if problem:
        raise SketchBenchError(str(path), f"not a valid baseline ({problem})",
                               "re-create it with --sketch-save-baseline")
    return baseline


def _schema_problem(baseline: dict) -> str | None:
    """What is wrong with a parsed baseline's structure, if anything (checked once, at load; its models are read
    into typed entries on the way)."""
    dataset = baseline.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("categories"), list) or \
            not isinstance(dataset.get("fingerprint"), str):
        return "'dataset' must hold a fingerprint and a category list"
    try:
        baseline["models"] = baseline_models_in(baseline.get("models"))
    except ValueError as problem:
        return str(problem)
    return None


@dataclass
class BaselineComparison:
    """Compares one model of the current run with the baseline; each check returns a table row."""

    baseline: dict
    settings: dict
    model: str
    profile: str
    path: str

    def _entry(self) -> BaselineEntry:
        return self.baseline["models"].get(self.model)

    def check_dataset(self, fingerprint: str | None, categories: list[str]) -> None:
        saved = self.baseline["dataset"]
        if saved["categories"] != categories:
            raise SketchBenchError(self.path, "the baseline was measured on another category list",
                                   "compare runs on the same test set, or save a new baseline")
        if saved["fingerprint"] != fingerprint:
            raise SketchBenchError(self.path, f"the baseline was measured on another test set "
                                   f"({saved['n_samples']:,} drawings, fingerprint {saved['fingerprint']})",
                                   "use the same --sketch-data/--sketch-samples-per-category, or save a new baseline")

    def accuracy_row(self, labels: np.ndarray, predicted: np.ndarray, categories: list[str]) -> BaselineRow:
        """McNemar on the paired per-drawing outcomes, with the drawings lost and gained, and the categories
        whose own change is significant."""
        entry = self._entry()
        before = np.asarray(entry.predicted) == labels
        now = np.asarray(predicted) == labels
        result = mcnemar_exact(before, now)
        per_category = []
        for index, category in enumerate(categories):
            rows = labels == index
            change = mcnemar_exact(before[rows], now[rows])
            if change["p_value"] < self.settings["category_alpha"]:
                per_category.append(CategoryChange(category, change["change"], change["p_value"]))
        return BaselineRow(self.model, "accuracy", "accuracy", result["baseline_accuracy"], result["current_accuracy"],
                           result["change"], accuracy_verdict(result, self.settings["accuracy_margin"],
                                                              self.settings["alpha"]),
                           p_value=result["p_value"], p_test="McNemar exact, two-sided", lost=result["lost"],
                           gained=result["gained"], significant_categories=per_category)

    def memory_row(self, memory: Memory, context: list[str] | None) -> tuple[BaselineRow | None, str | None]:
        """(row, None), or (None, why not compared): RSS growth depends on what the process ran before
        (measured: onnx +110 MB after TensorFlow, +143 MB alone), so only the same load order compares."""
        entry = self._entry()
        before = entry.memory_context
        if before is not None and context is not None and before != context:
            return None, (f"{self.model}: baseline memory was measured after {_runtimes(before)} had run in its "
                          f"process, this run's after {_runtimes(context)} — RSS growth depends on load order: not "
                          "compared (select the same models, in the same order, as the baseline run)")
        return self.margin("peak memory growth (MB)", entry.peak_growth_mb, memory.peak_growth_mb,
                           self.settings["memory_margin"], self.settings["memory_floor_mb"]), None

    def size_row(self, current_bytes: int | None) -> BaselineRow | None:
        saved = self._entry().model_size_bytes
        return self.margin("model size (MB)", None if saved is None else saved / 1e6,
                           None if current_bytes is None else current_bytes / 1e6, self.settings["size_margin"])

    def hardware_differs(self, hardware: dict) -> str | None:
        """Why latency is not comparable (another profile, CPU or GPU), or None; ``compare_across_profiles``
        forces the comparison anyway."""
        if self.settings["compare_across_profiles"]:
            return None
        if self.baseline["device_profile"] != self.profile:
            return f"profile '{self.baseline['device_profile']}' vs this run's '{self.profile}'"
        before, now = machine_identity(self.baseline.get("hardware", {})), machine_identity(hardware)
        if before != now:
            return f"{before} vs this run's {now}"
        return None

    def latency(self, batch_size: int, samples_s: list[float]) -> BaselineRow | None:
        saved = self._entry().latency_samples_s.get(batch_size)
        if not saved:
            return None
        result = latency_shift(saved, samples_s)
        p_value, p_test = deciding_p(result)
        return BaselineRow(self.model, f"p50 latency @{batch_size} (ms)", "latency", result["baseline_median_ms"],
                           result["current_median_ms"], result["ratio"],
                           latency_verdict(result, self.settings["latency_max_ratio"], self.settings["alpha"]),
                           p_value=p_value, p_test=p_test)

    def margin(self, metric: str, baseline_value: float | None, current: float | None, margin: float,
               floor: float = 0.0) -> BaselineRow | None:
        """Plain margin; ``floor`` is the smallest absolute change that counts (RSS noise for memory)."""
        if baseline_value is None or current is None:
            return None
        verdict = ("regression" if current > baseline_value * (1 + margin) and current - baseline_value > floor else
                   "improvement" if current < baseline_value * (1 - margin) else "no significant change")
        return BaselineRow(self.model, metric, "margin", baseline_value, current, current - baseline_value, verdict)
