"""Two JSON reports compared the way ``--sketch-baseline`` compares a run with a baseline file: the same
:class:`~pytest_sketchbench.baseline.BaselineComparison` rows (McNemar on the per-drawing predictions,
Mann–Whitney U on the recorded batch-1 samples on the same hardware, margins for memory and size), so
``sketchbench compare A.json B.json`` reproduces the gate's verdicts after the fact."""

from __future__ import annotations

import numpy as np

from pytest_sketchbench.baseline import FORMAT, BaselineComparison, settings_for, settings_from
from pytest_sketchbench.codec import baseline_entry, record_from_result, samples_by_batch
from pytest_sketchbench.errors import SketchBenchError


def as_baseline(report: dict) -> dict:
    """A JSON report in the baseline file's shape (the fields the comparison reads)."""
    metadata = report["benchmark_metadata"]
    dataset = metadata.get("dataset") or {}
    models = {name: baseline_entry(record_from_result(name, result))
              for name, result in report["model_results"].items()
              if result.get("predicted") and not result.get("categories_left_out") and not result.get("errors")}
    return {"format": FORMAT, "device_profile": metadata.get("device_profile"), "hardware": metadata.get("hardware"),
            "machine_speed_index": metadata.get("machine_speed_index"), "git_commit": metadata.get("git_commit"),
            "dataset": {"fingerprint": dataset.get("fingerprint"), "categories": metadata.get("categories"),
                        "n_samples": metadata.get("test_samples")}, "models": models}


def compare_reports(base: tuple[str, dict], new: tuple[str, dict], settings_table: dict) -> list[dict]:
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
    rows: list[dict] = vanished_rows(base_report, new_report)
    for model, result in new_report["model_results"].items():
        base_hash = (base_report["model_results"].get(model) or {}).get("model_sha256")
        if base_hash and result.get("model_sha256") and base_hash != result["model_sha256"]:
            rows.append({"model": model, "metric": "model files (sha256)", "baseline": base_hash[:12],
                         "current": result["model_sha256"][:12], "change": "another file under the same name",
                         "p_value": None, "verdict": "changed", "gated": False})
        if model not in baseline["models"] or not result.get("predicted"):
            continue
        comparison = BaselineComparison(baseline, settings_for(settings, model), model,
                                        metadata.get("device_profile"), base_path)
        comparison.check_dataset((metadata.get("dataset") or {}).get("fingerprint"), metadata.get("categories"))
        gate = set(comparison.settings["gate"])
        found = [("accuracy", comparison.accuracy_row(labels, np.asarray(result["predicted"]),
                                                      metadata.get("categories")))]
        samples = samples_by_batch(result.get("latency_samples_s")).get(1)
        if samples and comparison.hardware_differs(metadata.get("hardware") or {}) is None:
            found.append(("latency", comparison.latency(1, samples)))
        if result.get("memory"):
            row, _ = comparison.memory_row(result["memory"], result.get("memory_context"))
            found.append(("memory", row))
        found.append(("size", comparison.size_row(result.get("model_size_bytes"))))
        for gate_name, row in found:
            if row is not None:
                rows.append({**{k: v for k, v in row.items() if k != "detail"}, "gated": gate_name in gate})
    return rows


VANISHED = {"error": "erred", "skipped": "was skipped", "not run": "did not run", "inconclusive": None,
            "passed": None, "failed": None}


def vanished_rows(base_report: dict, new_report: dict) -> list[dict]:
    """A model the base run measured that the new run lacks, or that erred, was skipped or did not run there:
    a gated failure each (nothing vanishes silently)."""
    rows = []
    for model in base_report["model_results"]:
        result = new_report["model_results"].get(model)
        if result is None:
            what = "is missing from the new run"
        else:  # every report carries each model's status (schema.json requires it)
            status = result.get("status", "not run")
            what = VANISHED.get(status) and f"{VANISHED[status]} in the new run"
            errors = result.get("errors") or result.get("skipped") or []
            if what and errors:
                what += f": {errors[0]}"
        if what:
            rows.append({"model": model, "metric": "presence", "baseline": "measured", "current": "—",
                         "change": what, "p_value": None, "verdict": "missing", "gated": True})
    return rows
