"""Runs from several machines as one report: one row per (model, hardware), accuracy checked to agree
where model and data are the same, speed put side by side with each machine's speed index.

Pure functions over parsed ``--sketch-json`` reports; :mod:`pytest_sketchbench.cli` reads and writes the files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_sketchbench.codec import check_report_version, record_from_result
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.hardware import machine_label
from pytest_sketchbench.results import MergedFrom, ModelResult


def hardware_label(metadata: dict[str, Any]) -> str:
    """'cpu: AMD EPYC' or 'gpu: NVIDIA H200' — the machine a run measured, as a row names it."""
    return machine_label(metadata.get("hardware") or {}, metadata.get("device_profile"))


def check_reports(reports: list[tuple[str, dict[str, Any]]]) -> None:
    """Every input must be a sketchbench JSON report."""
    for path, report in reports:
        if not isinstance(report, dict) or "benchmark_metadata" not in report or "model_results" not in report:
            raise SketchBenchError(path, "is not a sketchbench JSON report (no benchmark_metadata/model_results)",
                                   "pass files written by --sketch-json")
        check_report_version(path, report)


def merge_reports(reports: list[tuple[str, dict[str, Any]]]
                  ) -> tuple[dict[str, Any], dict[str, ModelResult], list[str]]:
    """(metadata, records keyed 'model @ hardware', problems) of several runs.

    A model measured by two runs on the same hardware combines their figures (the later run's where both
    have one, every run's verdicts: the worst decides) and says so; runs on different test sets are refused;
    the same model (by content hash) on the
    same drawings must score the same everywhere (a mismatch is a problem: another file, another runtime
    version or an int8 kernel that differs by CPU).
    """
    check_reports(reports)
    records: dict[str, ModelResult] = {}
    problems: list[str] = []
    notes: list[str] = []
    runs = []
    for path, report in reports:
        metadata = report["benchmark_metadata"]
        label = hardware_label(metadata)
        index = (metadata.get("machine_speed_index") or {}).get("calls_per_s")
        runs.append({"path": path, "run_id": metadata.get("run_id"), "hardware": label, "speed_index": index,
                     "git_commit": metadata.get("git_commit"), "exit_status": metadata.get("exit_status"),
                     "workers": metadata.get("workers")})
        for model, result in report["model_results"].items():
            key = f"{model} @ {label}"
            record = record_from_result(key, result)
            record.merged_from = MergedFrom(source=path, base_model=model, machine=label, speed_index=index)
            if key in records:  # e.g. accuracy in one job, timing in another: combined, the later run's first
                notes.append(f"{key} was measured by more than one run: figures combined, {path}'s where both "
                             "have one; every run's verdicts kept, the worst decides")
                earlier = records[key]
                if earlier.model_sha256 != record.model_sha256:
                    notes.append(f"{key}: another file under the same name in {_origin(earlier).source} "
                                 f"({str(earlier.model_sha256)[:12]}) and {path} ({str(record.model_sha256)[:12]})")
                record = combined(earlier, record)
            records[key] = record
    labels = _common_labels(reports)
    problems += accuracy_mismatches(records)
    metadata = {**reports[-1][1]["benchmark_metadata"], "merged_from": runs,
                "notes": notes + [f"error: {problem}" for problem in problems]}
    metadata["dataset"] = {**(metadata.get("dataset") or {}), "labels": labels}
    return metadata, records, problems


KEPT_FROM_EVERY_RUN = ("verdicts", "errors", "skipped", "baseline_rows")


def _origin(record: ModelResult) -> MergedFrom:
    assert record.merged_from is not None  # every record here was read by merge_reports
    return record.merged_from


def combined(earlier: ModelResult, later: ModelResult) -> ModelResult:
    """One model measured by two runs on one machine: the later run's figures where both have one, but every
    run's verdicts, errors and skips, and the tests' outcomes added up — so a failure is never merged away."""
    measured = {f.name: getattr(later, f.name) for f in dataclasses.fields(later)
                if getattr(later, f.name) not in (None, {}, [])}
    record = dataclasses.replace(earlier, **measured)
    for key in KEPT_FROM_EVERY_RUN:
        setattr(record, key, [*getattr(earlier, key), *getattr(later, key)])
    outcomes = dict(earlier.outcomes)
    for outcome, count in later.outcomes.items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    record.outcomes = outcomes
    return record


def _common_labels(reports: list[tuple[str, dict[str, Any]]]) -> list[int] | None:
    """The test set's labels, which every run must share: runs on different test sets are refused."""
    datasets = [(path, r["benchmark_metadata"].get("dataset") or {}) for path, r in reports]
    first_path, first = datasets[0]
    for path, dataset in datasets[1:]:
        if dataset.get("fingerprint") != first.get("fingerprint"):
            raise SketchBenchError(path, f"was measured on another test set than {first_path} (fingerprint "
                                   f"{dataset.get('fingerprint')} vs {first.get('fingerprint')})",
                                   "merge runs of the same --sketch-data / --sketch-samples-per-category")
    return first.get("labels")


def accuracy_mismatches(records: dict[str, ModelResult]) -> list[str]:
    """The same model (name and content hash; file size in reports without one) on the same drawings must
    answer the same on every machine."""
    seen: dict[tuple[Any, ...], tuple[str, ModelResult]] = {}
    problems = []
    for key, record in records.items():
        if not record.accuracy or not record.dataset_fingerprint:
            continue
        identity = (_origin(record).base_model, record.model_sha256 or record.file_size_bytes,
                    record.dataset_fingerprint)
        if identity not in seen:
            seen[identity] = (key, record)
            continue
        first_key, first = seen[identity]
        assert first.accuracy is not None
        if first.predicted and record.predicted:
            differ = sum(a != b for a, b in zip(first.predicted, record.predicted, strict=False))
        else:
            differ = int(first.accuracy.correct != record.accuracy.correct)
        if differ:
            problems.append(f"{key} and {first_key}: the same model on the same drawings answered differently on "
                            f"{differ} drawings (accuracy {record.accuracy.accuracy:.4f} vs "
                            f"{first.accuracy.accuracy:.4f})")
            record.errors.append(problems[-1])
    return problems


def speed_rows(records: dict[str, ModelResult]) -> list[dict[str, Any]]:
    """Per model and machine: batch-1 p50, the machine's speed index and the p50 in calibration calls
    (p50 × speed index), the figure that compares across machines."""
    rows = []
    for key, record in records.items():
        timing = record.timing.get(1)
        if not timing:
            continue
        origin = _origin(record)
        index = origin.speed_index
        rows.append({"key": key, "model": origin.base_model, "machine": origin.machine,
                     "p50_ms": timing.median_ms, "speed_index": index,
                     "calibration_calls": timing.median_ms / 1000 * index if index else None})
    return sorted(rows, key=lambda row: (row["model"], row["machine"]))
