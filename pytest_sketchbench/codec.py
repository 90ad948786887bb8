"""How a model's result is spelled outside this process: the xdist transport, the JSON report's model entries and
the baseline file's model entries. The only module that knows those key names.

In memory a result is a :class:`~pytest_sketchbench.results.ModelResult`: timings keyed by batch size (``int``),
side-by-side ratios by ``(reference, batch size)``. JSON keys are text (``"32"``, ``"calibration@1"``), so every
way out goes through :func:`to_wire` or :func:`model_result` and every way back in through :func:`from_wire`,
:func:`record_from_result` or :func:`samples_by_batch`. The JSON report carries ``format_version``; a file without
one was written before the field existed (version 1), and the baseline rows of versions 1 and 2 (text) are read
back into numbers; a newer version is refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, TypeVar

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.results import (
    Accuracy,
    BaselineEntry,
    BaselineRow,
    Calibration,
    CategoryAccuracy,
    CategoryChange,
    CategoryTable,
    Disagreement,
    LatencyStats,
    Memory,
    ModelResult,
    Parity,
    Verdict,
)

# 3: baseline comparison rows hold numbers (BaselineRow); 2: format_version and the model files' sha256 recorded, the
# rows pre-formatted text (read and converted by baseline_row_of); 1: before (the layout of 2 otherwise)
FORMAT_VERSION = 3

# attribute (or a plugin's extras key) → JSON key, in the order the JSON lists them (an attribute missing here is
# not reported); the same table reads a JSON report back (``sketchbench report`` / ``merge`` / ``compare``)
RESULT_KEYS: dict[str, str] = {
    "outcomes": "outcomes", "skipped": "skipped", "category_limits": "category_limits",
    "category_mapping": "category_mapping", "categories_left_out": "categories_left_out", "model_info": "model_info",
    "device_profile": "device_profile", "device": "device", "hardware": "hardware", "accuracy": "accuracy_results",
    "accuracy_pass": "accuracy_pass", "relative_speed": "relative_speed", "end_to_end": "end_to_end",
    "cold_start": "cold_start", "batch_sweep": "batch_sweep", "parity": "parity", "profile": "profile",
    "memory": "memory", "gpu_memory": "gpu_memory", "placement": "placement", "memory_context": "memory_context",
    "load_s": "load_time_s", "api": "api_results", "served": "served_results", "browser": "browser_results",
    "loadgen": "loadgen", "input_diagnosis": "input_diagnosis",
    "verdicts": "threshold_verdicts", "errors": "errors", "parallel": "parallel", "predicted": "predicted",
    "dataset_fingerprint": "dataset_fingerprint", "model_sha256": "model_sha256",
}
EXTRAS = ("api", "served", "browser")  # ModelPlugin.results_key values: kept in ModelResult.extras
RENAMED_FIELDS = {"with_model": "with"}  # attribute → key inside a part
Part = TypeVar("Part")


def plain(value: Any) -> Any:
    """A typed part (a result's, or a report's such as the category table) as JSON-ready values: a dataclass by
    its fields (an optional field never filled is left out), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {RENAMED_FIELDS.get(f.name, f.name): plain(getattr(value, f.name))
                for f in dataclasses.fields(value) if not (getattr(value, f.name) is None and f.default is None)}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _part(kind: type[Part], data: dict[str, Any], **typed: Any) -> Part:
    """A typed part from its JSON dict: the fields the dict has (older files lack some optional ones)."""
    known = {f.name: data[RENAMED_FIELDS.get(f.name, f.name)] for f in dataclasses.fields(kind)  # type: ignore[arg-type]
             if RENAMED_FIELDS.get(f.name, f.name) in data}
    return kind(**{**known, **typed})


def latency_of(data: dict[str, Any], samples: list[float] | None = None) -> LatencyStats:
    return _part(LatencyStats, data, samples_s=list(samples if samples is not None else data.get("samples_s", [])))


def accuracy_of(data: dict[str, Any]) -> Accuracy:
    calibration = data.get("calibration")
    return _part(Accuracy, data, per_category={category: _part(CategoryAccuracy, row)
                                               for category, row in data["per_category"].items()},
                 calibration=_part(Calibration, calibration) if calibration else None)


def parity_of(data: dict[str, Any]) -> Parity:
    return _part(Parity, data, disagreeing=[_part(Disagreement, row) for row in data.get("disagreeing", [])])


def verdict_of(data: dict[str, Any]) -> Verdict:
    return _part(Verdict, {"status": None, "measured": None, "limit": None, **data})


def latency_figures(stats: LatencyStats) -> dict[str, Any]:
    """The summary without the raw samples (pytest-benchmark's ``extra_info``, the JSON's ``timing_results``)."""
    return {key: value for key, value in plain(stats).items() if key != "samples_s"}


def samples_by_batch(mapping: dict[str, Any] | None) -> dict[int, Any]:
    """``{"1": …, "32": …}`` as read from JSON → ``{1: …, 32: …}``, in batch order."""
    return {int(size): value for size, value in sorted((mapping or {}).items(), key=lambda kv: int(kv[0]))}


def _samples_out(record: ModelResult) -> dict[str, list[float]]:
    """``latency_samples_s`` as the JSON report and the baseline file keep it: batch size (text) → seconds."""
    return {str(size): list(stats.samples_s) for size, stats in sorted(record.timing.items())}


def speed_keys_out(mapping: dict[tuple[str, int], Any] | None) -> dict[str, Any]:
    """``{("calibration", 1): …}`` → ``{"calibration@1": …}``."""
    return {f"{reference}@{size}": value for (reference, size), value in (mapping or {}).items()}


def speed_keys_in(mapping: dict[str, Any] | None) -> dict[tuple[str, int], Any]:
    """The inverse of :func:`speed_keys_out` (a reference's own name may hold "@": the batch is after the last)."""
    keyed: dict[tuple[str, int], Any] = {}
    for key, value in (mapping or {}).items():
        reference, _, size = key.rpartition("@")
        keyed[(reference, int(size))] = value
    return keyed


def _attributes(record: ModelResult) -> dict[str, Any]:
    """Every attribute as JSON-ready values, a plugin's extras beside the rest, text batch keys."""
    spelled = plain(dataclasses.replace(record, timing={}, relative_speed={}, extras={}))
    spelled.update(record.extras)
    spelled["timing"] = {str(size): plain(stats) for size, stats in sorted(record.timing.items())}
    spelled["relative_speed"] = speed_keys_out(record.relative_speed)
    return spelled  # type: ignore[no-any-return]


def _from_attributes(data: dict[str, Any]) -> ModelResult:
    """The inverse of :func:`_attributes`."""
    fields = {f.name for f in dataclasses.fields(ModelResult)}
    typed: dict[str, Any] = {key: value for key, value in data.items() if key in fields and value is not None}
    typed["timing"] = {size: latency_of(stats) for size, stats in samples_by_batch(data.get("timing")).items()}
    typed["relative_speed"] = speed_keys_in(data.get("relative_speed"))
    typed["extras"] = {key: data[key] for key in EXTRAS if data.get(key) is not None}
    typed["verdicts"] = [verdict_of(v) for v in data.get("verdicts") or []]
    typed["baseline_rows"] = baseline_rows_in(data.get("baseline_rows"))
    typed["parity"] = {other: parity_of(p) for other, p in (data.get("parity") or {}).items()}
    if data.get("accuracy"):
        typed["accuracy"] = accuracy_of(data["accuracy"])
    if data.get("memory"):
        typed["memory"] = _part(Memory, data["memory"])
    typed.pop("merged_from", None)  # a merge's provenance stays in the merging process
    return ModelResult(**typed)


def category_table_of(data: dict[str, Any]) -> CategoryTable:
    """The report's category × model accuracy table from its JSON form (``comparison_analysis``)."""
    return _part(CategoryTable, data)


def baseline_rows_out(rows: list[BaselineRow]) -> list[dict[str, Any]]:
    """Baseline comparison rows as the JSON report, ``sketchbench compare --json`` and the wire carry them."""
    return [plain(row) for row in rows]


def baseline_rows_in(rows: list[dict[str, Any]] | None) -> list[BaselineRow]:
    """The inverse of :func:`baseline_rows_out`; rows written before format 3 are converted."""
    return [baseline_row_of(row) for row in rows or []]


def baseline_row_of(data: dict[str, Any]) -> BaselineRow:
    """One row; a row without ``kind`` was written as text by format 1 or 2 and is read back into numbers."""
    if "kind" not in data:
        return _legacy_row(data)
    return _part(BaselineRow, data, ci=tuple(data["ci"]) if data.get("ci") else None,
                 significant_categories=[_part(CategoryChange, c) for c in data.get("significant_categories", [])])


NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def _number(text: Any) -> float | None:
    found = re.search(NUMBER, str(text)) if text is not None else None
    return float(found.group()) if found else None


def _legacy_kind(metric: str) -> str:
    if metric == "accuracy":
        return "accuracy"
    if metric.startswith("p50 latency"):
        return "same-run latency" if metric.endswith("same run") else "latency"
    return "margin" if metric in ("peak memory growth (MB)", "model size (MB)") else "text"


def _legacy_row(data: dict[str, Any]) -> BaselineRow:
    """A format 1/2 row (``"baseline": "0.9080"``, ``"change": "-0.0030, 3 drawings lost, 1 gained"``, …)."""
    kind = _legacy_kind(str(data.get("metric", "")))
    numeric = kind != "text"
    change = data.get("change")
    row = BaselineRow(str(data.get("model")), str(data.get("metric")), kind,
                      _number(data.get("baseline")) if numeric else data.get("baseline"),
                      _number(data.get("current")) if numeric else data.get("current"),
                      _number(change) if numeric else change, str(data.get("verdict")),
                      p_value=_number(data.get("p_value")), p_test=data.get("p_test"), test=data.get("test"),
                      gated=data.get("gated"))
    text = str(change or "")
    if (lost := re.search(r"(\d+) drawings lost, (\d+) gained", text)) is not None:
        row.lost, row.gained = int(lost.group(1)), int(lost.group(2))
    if (interval := re.search(rf"\(({NUMBER})% CI ({NUMBER})–({NUMBER})\)", text)) is not None:
        row.confidence = float(interval.group(1)) / 100
        row.ci = (float(interval.group(2)), float(interval.group(3)))
    row.significant_categories = [
        CategoryChange(name, float(value), float(p_value)) for name, value, p_value in
        re.findall(rf"(.+?) ({NUMBER}) \(p=({NUMBER})\)(?:; |$)", str(data.get("categories") or ""))]
    return row


def to_wire(record: ModelResult) -> dict[str, Any]:
    """A result as JSON carries it between processes (xdist workers → controller)."""
    wire: dict[str, Any] = json.loads(json.dumps(_attributes(record)))
    return wire


def from_wire(data: dict[str, Any]) -> ModelResult:
    """The inverse of :func:`to_wire`."""
    return _from_attributes(data)


def model_result(record: ModelResult, status: str) -> dict[str, Any]:
    """One model's result as the JSON report has it: timing statistics without the raw samples, which are kept
    apart (``latency_samples_s``) so that a later ``sketchbench compare`` can test them."""
    spelled = _attributes(record)
    result = {"status": status, **{json_key: spelled.get(key) for key, json_key in RESULT_KEYS.items()},
              "timing_results": {size: {k: v for k, v in stats.items() if k != "samples_s"}
                                 for size, stats in spelled["timing"].items()},
              "latency_samples_s": _samples_out(record),
              "model_size_bytes": record.file_size_bytes}
    return result


def reported_status(result: dict[str, Any]) -> str:
    """The status a JSON report gave a model (every report carries one; schema.json requires it)."""
    return str(result.get("status", "not run"))


def record_from_result(name: str, result: dict[str, Any]) -> ModelResult:
    """The inverse of :func:`model_result`: a JSON report's model back into the result every reporter reads."""
    data = {key: result[json_key] for key, json_key in RESULT_KEYS.items() if result.get(json_key) is not None}
    samples = samples_by_batch(result.get("latency_samples_s"))
    data["timing"] = {str(size): {**stats, "samples_s": samples.get(size, [])}
                      for size, stats in samples_by_batch(result.get("timing_results")).items()}
    data["model"] = name
    return _from_attributes(data)


def baseline_entry(record: ModelResult) -> BaselineEntry:
    """What the baseline file keeps of one model (one builder, for a live run's result and for a JSON report's
    model read back with :func:`record_from_result`)."""
    return BaselineEntry(
        predicted=list(record.predicted or []),
        latency_samples_s={size: list(stats.samples_s) for size, stats in sorted(record.timing.items())},
        peak_growth_mb=record.memory.peak_growth_mb if record.memory else None,
        memory_context=record.memory_context, model_size_bytes=record.file_size_bytes, load_s=record.load_s,
        accuracy=record.accuracy.accuracy if record.accuracy else None)


def baseline_models_out(models: dict[str, BaselineEntry]) -> dict[str, Any]:
    """The baseline file's ``models`` table."""
    return {name: {**plain(entry), "latency_samples_s": {str(size): samples for size, samples
                                                           in entry.latency_samples_s.items()}}
            for name, entry in models.items()}


def baseline_models_in(models: Any) -> dict[str, BaselineEntry]:
    """A baseline file's ``models`` table, checked; ``ValueError`` says what is wrong with it."""
    if not isinstance(models, dict):
        raise ValueError("'models' must be a table of model results")
    entries = {}
    for name, model in models.items():
        if not isinstance(model, dict) or not isinstance(model.get("predicted"), list) or \
                not all(isinstance(label, int) for label in model["predicted"]):
            raise ValueError(f"model '{name}' has no list of predicted labels")
        samples = model.get("latency_samples_s", {})
        if not isinstance(samples, dict) or not all(
                isinstance(v, list) and all(isinstance(x, int | float) for x in v) for v in samples.values()):
            raise ValueError(f"model '{name}' has malformed latency samples")
        entries[name] = BaselineEntry(
            predicted=model["predicted"], latency_samples_s=samples_by_batch(samples),
            peak_growth_mb=model.get("peak_growth_mb"), memory_context=model.get("memory_context"),
            model_size_bytes=model.get("model_size_bytes"), load_s=model.get("load_s"), accuracy=model.get("accuracy"))
    return entries


def check_report_version(path: str, report: dict[str, Any]) -> None:
    """A JSON report this version can read: version 1 (no field) to :data:`FORMAT_VERSION`; a newer one is refused
    in one line."""
    version = report.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise SketchBenchError(path, f"is a JSON report of format version {version!r}; this version reads 1 to "
                               f"{FORMAT_VERSION}", "upgrade pytest-sketchbench, or re-render the run with the "
                               "version that wrote it")
