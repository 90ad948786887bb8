"""The JSON report of a run: its metadata, one entry per model (spelled by :mod:`pytest_sketchbench.codec`) and the
cross-model comparison; ``format_version`` says which layout, ``schema.json`` beside this file documents it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_sketchbench.session import SketchSession

import dataclasses
import datetime as dt
import json
import math
import os
import uuid
from pathlib import Path

from pytest_sketchbench.codec import FORMAT_VERSION, baseline_rows_out, model_result, plain
from pytest_sketchbench.hardware import git_commit, library_versions
from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import comparison_of, model_status, verdict_counts

SCHEMA_PATH = Path(__file__).with_name("schema.json")
SECRET_KEYS = ("api_key", "key", "token", "secret", "password")


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (strict JSON has neither); secrets never leave."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: ("<redacted>" if k.lower() in SECRET_KEYS else json_safe(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a typed part (the category table)
        return json_safe(plain(value))
    return value


def build_report(sketch: SketchSession, exitstatus: int, interrupted: bool = False) -> dict[str, Any]:
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
        "format_version": FORMAT_VERSION,
        "benchmark_metadata": metadata,
        "model_results": {name: model_result(record, model_status(record))
                          for name, record in sketch.results.items()},
        "comparison_analysis": comparison_of(sketch),
    }
    comparison_rows = baseline_rows(sketch)
    if comparison_rows is not None:
        report["comparison_to_baseline"] = comparison_rows
    safe: dict[str, Any] = json_safe(report)
    return safe


def baseline_rows(sketch: SketchSession) -> dict[str, Any] | None:
    """The baseline comparison gathered from every model's record (they may come from several workers)."""
    if not sketch.options.baseline:
        return None
    rows = [row for record in sketch.results.values() for row in record.baseline_rows]
    baseline = sketch.baseline or {}
    return {"baseline": sketch.options.baseline, "baseline_commit": baseline.get("git_commit"),
            "baseline_machine_speed_index": baseline.get("machine_speed_index"),
            "baseline_profile": baseline.get("device_profile"), "rows": baseline_rows_out(rows),
            "regressions": sum(row.verdict == "regression" for row in rows)}


def json_text(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, allow_nan=False)
