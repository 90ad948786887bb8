"""The JSON report: the seed's structure, documented by ``schema.json`` beside this file."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import model_status

SCHEMA_PATH = Path(__file__).with_name("schema.json")
PACKAGES = ("pytest-sketchbench", "pytest", "pytest-benchmark", "numpy", "scikit-learn", "tensorflow",
            "tensorflow-cpu", "keras", "onnxruntime", "torch", "google-genai", "pytest-xdist", "pytest-html")
SECRET_KEYS = ("api_key", "key", "token", "secret", "password")


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _clean(value):
    """JSON-safe: NaN/inf become null (strict JSON has neither); secrets never leave."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: ("<redacted>" if k.lower() in SECRET_KEYS else _clean(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def model_result(record: dict) -> dict:
    timing = {batch: {k: v for k, v in stats.items() if k != "samples_s"}
              for batch, stats in sorted(record.get("timing", {}).items(), key=lambda kv: int(kv[0]))}
    return {
        "status": model_status(record),
        "outcomes": record.get("outcomes", {}),
        "skipped": record.get("skipped", []),
        "category_limits": record.get("category_limits"),
        "category_mapping": record.get("category_mapping"),
        "model_info": record.get("model_info"),
        "device_profile": record.get("device_profile"),
        "device": record.get("device"),
        "hardware": record.get("hardware"),
        "accuracy_results": record.get("accuracy"),
        "accuracy_pass": record.get("accuracy_pass"),
        "timing_results": timing,
        "relative_speed": record.get("relative_speed", {}),
        "end_to_end": record.get("end_to_end"),
        "cold_start": record.get("cold_start"),
        "batch_sweep": record.get("batch_sweep"),
        "parity": record.get("parity", {}),
        "profile": record.get("profile"),
        "memory": record.get("memory"),
        "memory_context": record.get("memory_context"),
        "model_size_bytes": (record.get("model_info") or {}).get("file_size_bytes"),
        "load_time_s": record.get("load_s"),
        "api_results": record.get("api"),
        "threshold_verdicts": record.get("verdicts", []),
        "errors": record.get("errors", []),
        "parallel": record.get("parallel"),
    }


def build_report(sketch, exitstatus: int, interrupted: bool = False) -> dict:
    dataset = sketch._dataset
    metadata = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": uuid.uuid4().hex,  # the HTML of the same run carries it too
        "git_commit": git_commit(sketch.rootdir),
        "test_samples": len(dataset) if dataset is not None else 0,
        "categories": dataset.categories if dataset is not None else [],
        "dataset": {"source": dataset.source if dataset is not None else None,
                    "fingerprint": dataset.fingerprint() if dataset is not None else None,
                    "samples_per_category": sketch.options.samples_per_category or None},
        "models": sketch.selected,
        "hardware": sketch.hardware,
        "machine_speed_index": sketch.measured_speed_index,
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
        "comparison_analysis": sketch.comparison(),
    }
    comparison_rows = baseline_rows(sketch)
    if comparison_rows is not None:
        report["comparison_to_baseline"] = comparison_rows
    return _clean(report)


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
