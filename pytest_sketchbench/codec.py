"""How a model's record is spelled outside this process: the xdist transport, the JSON report's model entries and
the baseline file's model entries.

In memory a record's timings are keyed by batch size (``int``) and its side-by-side ratios by ``(reference, batch
size)``; JSON keys are text (``"32"``, ``"calibration@1"``), so every way out goes through
:func:`to_wire` or :func:`model_result` and every way back in through :func:`from_wire`, :func:`record_from_result`
or :func:`samples_by_batch`. The JSON report carries ``format_version``; a file without one was written before
the field existed (version 1, the same layout) and reads as it is; a newer version is refused in one line.
"""

from __future__ import annotations

import json
from typing import Any

from pytest_sketchbench.errors import SketchBenchError

Record = dict[str, Any]  # one model's results as a run holds them (timings keyed by int batch size)

FORMAT_VERSION = 2  # 2: format_version and the model files' sha256 recorded; 1: before (same layout otherwise)

# record key → JSON key, in the order the JSON lists them (a record key missing here is not reported); the same
# table reads a JSON report back into records (``sketchbench report`` / ``merge`` / ``compare``)
RESULT_KEYS: dict[str, str] = {
    "outcomes": "outcomes", "skipped": "skipped", "category_limits": "category_limits",
    "category_mapping": "category_mapping", "categories_left_out": "categories_left_out", "model_info": "model_info",
    "device_profile": "device_profile", "device": "device", "hardware": "hardware", "accuracy": "accuracy_results",
    "accuracy_pass": "accuracy_pass", "relative_speed": "relative_speed", "end_to_end": "end_to_end",
    "cold_start": "cold_start", "batch_sweep": "batch_sweep", "parity": "parity", "profile": "profile",
    "memory": "memory", "gpu_memory": "gpu_memory", "placement": "placement", "memory_context": "memory_context",
    "load_s": "load_time_s", "api": "api_results", "served": "served_results", "loadgen": "loadgen",
    "input_diagnosis": "input_diagnosis",
    "verdicts": "threshold_verdicts", "errors": "errors", "parallel": "parallel", "predicted": "predicted",
    "dataset_fingerprint": "dataset_fingerprint", "model_sha256": "model_sha256",
}
EMPTY_WHEN_MISSING: dict[str, dict[str, Any] | list[Any]] = {
    "outcomes": {}, "skipped": [], "relative_speed": {}, "parity": {}, "verdicts": [], "errors": []}


def samples_by_batch(mapping: dict[str, Any] | None) -> dict[int, Any]:
    """``{"1": …, "32": …}`` as read from JSON → ``{1: …, 32: …}``, in batch order."""
    return {int(size): value for size, value in sorted((mapping or {}).items(), key=lambda kv: int(kv[0]))}


def _text_keys(mapping: dict[int, Any]) -> dict[str, Any]:
    return {str(size): value for size, value in sorted(mapping.items())}


def _samples_out(record: Record) -> dict[str, Any]:
    """``latency_samples_s`` as the JSON report and the baseline file keep it: batch size (text) → seconds."""
    return {str(size): stats.get("samples_s", []) for size, stats in sorted((record.get("timing") or {}).items())}


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


def to_wire(record: Record) -> dict[str, Any]:
    """A record as JSON carries it between processes (xdist workers → controller)."""
    wire: dict[str, Any] = json.loads(json.dumps({**record, "timing": _text_keys(record.get("timing") or {}),
                                                  "relative_speed": speed_keys_out(record.get("relative_speed"))}))
    return wire


def from_wire(data: dict[str, Any]) -> Record:
    """The inverse of :func:`to_wire`."""
    return {**data, "timing": samples_by_batch(data.get("timing")),
            "relative_speed": speed_keys_in(data.get("relative_speed"))}


def model_result(record: Record, status: str) -> dict[str, Any]:
    """One model's record as the JSON report has it: timing statistics without the raw samples, which are kept
    apart (``latency_samples_s``) so that a later ``sketchbench compare`` can test them."""
    timing = sorted((record.get("timing") or {}).items())
    result = {"status": status, **{json_key: record.get(key) for key, json_key in RESULT_KEYS.items()},
              "timing_results": {str(size): {k: v for k, v in stats.items() if k != "samples_s"}
                                 for size, stats in timing},
              "latency_samples_s": _samples_out(record),
              "model_size_bytes": (record.get("model_info") or {}).get("file_size_bytes")}
    for key, empty in EMPTY_WHEN_MISSING.items():
        if result[RESULT_KEYS[key]] is None:
            result[RESULT_KEYS[key]] = type(empty)()
    result["relative_speed"] = speed_keys_out(record.get("relative_speed"))
    return result


def record_from_result(name: str, result: dict[str, Any]) -> Record:
    """The inverse of :func:`model_result`: a JSON report's model back into the record every reporter reads."""
    record = {key: result[json_key] for key, json_key in RESULT_KEYS.items() if result.get(json_key) is not None}
    record["relative_speed"] = speed_keys_in(result.get("relative_speed"))
    samples = samples_by_batch(result.get("latency_samples_s"))
    record["timing"] = {size: {**stats, "samples_s": samples.get(size, [])}
                        for size, stats in samples_by_batch(result.get("timing_results")).items()}
    record.setdefault("verdicts", [])
    record.setdefault("errors", [])
    record["model"] = name
    return record


def baseline_entry(record: Record) -> dict[str, Any]:
    """What the baseline file keeps of one model: every figure its comparisons read (one builder, for a live run's
    record and for a JSON report's model read back with :func:`record_from_result`)."""
    return {
        "predicted": record.get("predicted"),
        "latency_samples_s": _samples_out(record),
        "peak_growth_mb": (record.get("memory") or {}).get("peak_growth_mb"),
        "memory_context": record.get("memory_context"),
        "model_size_bytes": (record.get("model_info") or {}).get("file_size_bytes"),
        "load_s": record.get("load_s"),
        "accuracy": (record.get("accuracy") or {}).get("accuracy"),
    }


def check_report_version(path: str, report: dict[str, Any]) -> None:
    """A JSON report this version can read: version 1 (no field) or 2; a newer one is refused in one line."""
    version = report.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise SketchBenchError(path, f"is a JSON report of format version {version!r}; this version reads 1 to "
                               f"{FORMAT_VERSION}", "upgrade pytest-sketchbench, or re-render the run with the "
                               "version that wrote it")
