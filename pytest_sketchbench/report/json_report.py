"""The JSON report: the seed's structure, documented by ``schema.json`` beside this file."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from pathlib import Path

from pytest_sketchbench.hardware import git_commit, library_versions
from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import comparison_of, model_status, verdict_counts

SCHEMA_PATH = Path(__file__).with_name("schema.json")
SECRET_KEYS = ("api_key", "key", "token", "secret", "password")


def json_safe(value):
    """JSON-safe: NaN/inf become null (strict JSON has neither); secrets never leave."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: ("<redacted>" if k.lower() in SECRET_KEYS else json_safe(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# record key → JSON key, in the order the JSON lists them (a record key missing here is not reported);
# the same table reads a JSON report back into records (``sketchbench report`` / ``merge``)
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


def model_result(record: dict) -> dict:
    """One model's record as the JSON report has it: timing statistics without the raw samples, which are
    kept apart (``latency_samples_s``) so that a later ``sketchbench compare`` can test them."""
    ordered = sorted(record.get("timing", {}).items(), key=lambda kv: int(kv[0]))
    result = {"status": model_status(record),
              **{json_key: record.get(key) for key, json_key in RESULT_KEYS.items()},
              "timing_results": {b: {k: v for k, v in stats.items() if k != "samples_s"} for b, stats in ordered},
              "latency_samples_s": {b: stats.get("samples_s", []) for b, stats in ordered},
              "model_size_bytes": (record.get("model_info") or {}).get("file_size_bytes")}
    for key, empty in (("outcomes", {}), ("skipped", []), ("relative_speed", {}), ("parity", {}),
                       ("verdicts", []), ("errors", [])):
        if result[RESULT_KEYS[key]] is None:
            result[RESULT_KEYS[key]] = empty
    return result


def record_from_result(name: str, result: dict) -> dict:
    """The inverse of :func:`model_result`: a JSON report's model back into the record every reporter reads."""
    record = {key: result[json_key] for key, json_key in RESULT_KEYS.items() if result.get(json_key) is not None}
    samples = result.get("latency_samples_s") or {}
    record["timing"] = {b: {**stats, "samples_s": samples.get(b, [])}
                        for b, stats in (result.get("timing_results") or {}).items()}
    record.setdefault("verdicts", [])
    record.setdefault("errors", [])
    record["model"] = name
    return record


def build_report(sketch, exitstatus: int, interrupted: bool = False) -> dict:
    dataset = sketch.loaded_dataset
    metadata = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": uuid.uuid4().hex,  # the HTML of the same run carries it too
        "git_commit": git_commit(sketch.rootdir),
        "test_samples": len(dataset) if dataset is not None else 0,
        "categories": dataset.categories if dataset is not None else [],
        "dataset": {"source": dataset.source if dataset is not None else None,
                    "fingerprint": dataset.fingerprint() if dataset is not None else None,
                    "labels": dataset.labels.tolist() if dataset is not None else None,
                    "samples_per_category": sketch.options.samples_per_category or None},
        "models": sketch.selected,
        "hardware": sketch.hardware,
        "machine_speed_index": sketch.measured_speed_index,
        "host_audit": sketch.host_audit(),
        "verdict_counts": verdict_counts(sketch.results),
        "inconclusive_policy": sketch.options.inconclusive,
        "device_profile": sketch.profile,
        "library_versions": library_versions(),
        "exit_status": int(exitstatus),
        "interrupted": interrupted,
        "notes": list(sketch.notes) + ([] if charts.available() else [charts.MISSING_NOTE]),
        "workers": os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
    }
    report = {
        "benchmark_metadata": metadata,
        "model_results": {name: model_result(record) for name, record in sketch.results.items()},
        "comparison_analysis": comparison_of(sketch),
    }
    comparison_rows = baseline_rows(sketch)
    if comparison_rows is not None:
        report["comparison_to_baseline"] = comparison_rows
    return json_safe(report)


def baseline_rows(sketch) -> dict | None:
    """The baseline comparison gathered from every model's record (they may come from several workers)."""
    if not sketch.options.baseline:
        return None
    rows = [row for record in sketch.results.values() for row in record.get("baseline_rows", [])]
    baseline = sketch.baseline or {}
    return {"baseline": sketch.options.baseline, "baseline_commit": baseline.get("git_commit"),
            "baseline_machine_speed_index": baseline.get("machine_speed_index"),
            "baseline_profile": baseline.get("device_profile"), "rows": rows,
            "regressions": sum(r["verdict"] == "regression" for r in rows)}


def json_text(report: dict) -> str:
    return json.dumps(report, indent=1, allow_nan=False)
