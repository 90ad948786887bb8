"""Two JSON reports compared the way ``--sketch-baseline`` compares a run with a baseline file: the same
:class:`~pytest_sketchbench.baseline.BaselineComparison` rows (McNemar on the per-drawing predictions,
Mann–Whitney U on the recorded batch-1 samples on the same hardware, margins for memory and size), so
``sketchbench compare A.json B.json`` reproduces the gate's verdicts after the fact."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_sketchbench.baseline import FORMAT, BaselineComparison, settings_for, settings_from
from pytest_sketchbench.codec import baseline_entry, record_from_result, reported_status
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.results import BaselineRow


def as_baseline(report: dict[str, Any]) -> dict[str, Any]:
    """A JSON report in the baseline file's shape (the fields the comparison reads)."""
    metadata = report["benchmark_metadata"]
    dataset = metadata.get("dataset") or {}
    records = (record_from_result(name, result) for name, result in report["model_results"].items())
    models = {record.model: baseline_entry(record) for record in records
              if record.predicted and not record.categories_left_out and not record.errors}
    return {"format": FORMAT, "device_profile": metadata.get("device_profile"), "hardware": metadata.get("hardware"),
            "machine_speed_index": metadata.get("machine_speed_index"), "git_commit": metadata.get("git_commit"),
            "dataset": {"fingerprint": dataset.get("fingerprint"), "categories": metadata.get("categories"),
                        "n_samples": metadata.get("test_samples")}, "models": models}


def compare_reports(base: tuple[str, dict[str, Any]], new: tuple[str, dict[str, Any]],
                    settings_table: dict[str, Any]) -> list[BaselineRow]:
    """Every row the baseline tests would record for the models both reports share; ``gated`` marks the
    rows whose metric is in the gate list."""
    (base_path, base_report), (new_path, new_report) = base, new
    baseline = as_baseline(base_report)
    metadata = new_report["benchmark_metadata"]
    labels = (metadata.get("dataset") or {}).get("labels")
    if labels is None:
        raise SketchBenchError(new_path, "has no test-set labels (written by an older version)",
                               "re-run with this version's --sketch-json")
    labels = np.asarray(labels)
    settings = settings_from(settings_table, "config")
    rows = vanished_rows(base_report, new_report)
    base_records = {name: record_from_result(name, result) for name, result in base_report["model_results"].items()}
    for model, result in new_report["model_results"].items():
        record = record_from_result(model, result)
        base_hash = base_records[model].model_sha256 if model in base_records else None
        if base_hash and record.model_sha256 and base_hash != record.model_sha256:
            rows.append(BaselineRow(model, "model files (sha256)", "text", base_hash[:12], record.model_sha256[:12],
                                    "another file under the same name", "changed", gated=False))
        if model not in baseline["models"] or not record.predicted:
            continue
        comparison = BaselineComparison(baseline, settings_for(settings, model), model,
                                        metadata.get("device_profile"), base_path)
        comparison.check_dataset((metadata.get("dataset") or {}).get("fingerprint"), metadata.get("categories"))
        gate = set(comparison.settings["gate"])
        found: list[tuple[str, BaselineRow | None]] = [
            ("accuracy", comparison.accuracy_row(labels, np.asarray(record.predicted), metadata.get("categories")))]
        batch1 = record.timing.get(1)
        if batch1 and batch1.samples_s and comparison.hardware_differs(metadata.get("hardware") or {}) is None:
            found.append(("latency", comparison.latency(1, batch1.samples_s)))
        if record.memory:
            row, _ = comparison.memory_row(record.memory, record.memory_context)
            found.append(("memory", row))
        found.append(("size", comparison.size_row(record.file_size_bytes)))
        for gate_name, row in found:
            if row is not None:
                row.gated = gate_name in gate
                rows.append(row)
    return rows


VANISHED = {"error": "erred", "skipped": "was skipped", "not run": "did not run", "inconclusive": None,
            "passed": None, "measured": None, "failed": None}


def vanished_rows(base_report: dict[str, Any], new_report: dict[str, Any]) -> list[BaselineRow]:
    """A model the base run measured that the new run lacks, or that erred, was skipped or did not run there:
    a gated failure each (nothing vanishes silently)."""
    rows = []
    for model in base_report["model_results"]:
        result = new_report["model_results"].get(model)
        what: str | None = "is missing from the new run"
        if result is not None:  # every report carries each model's status (schema.json requires it)
            status = reported_status(result)
            what = VANISHED.get(status) and f"{VANISHED[status]} in the new run"
            record = record_from_result(model, result)
            errors = record.errors or record.skipped
            if what and errors:
                what += f": {errors[0]}"
        if what:
            rows.append(BaselineRow(model, "presence", "text", "measured", None, what, "missing", gated=True))
    return rows
