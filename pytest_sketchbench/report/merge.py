"""Runs from several machines as one report: one row per (model, hardware), accuracy checked to agree
where model and data are the same, speed put side by side with each machine's speed index.

Pure functions over parsed ``--sketch-json`` reports; :mod:`pytest_sketchbench.cli` reads and writes the files.
"""

from __future__ import annotations

from pytest_sketchbench.codec import check_report_version, record_from_result
from pytest_sketchbench.errors import SketchBenchError


def hardware_label(metadata: dict) -> str:
    """'cpu: AMD EPYC' or 'gpu: NVIDIA H200' — the machine a run measured, as a row names it."""
    hardware = metadata.get("hardware") or {}
    gpus = hardware.get("gpus") or []
    what = gpus[0]["name"] if gpus else (hardware.get("cpu") or {}).get("model") or "unknown CPU"
    return f"{metadata.get('device_profile') or 'cpu'}: {what}"


def check_reports(reports: list[tuple[str, dict]]) -> None:
    """Every input must be a sketchbench JSON report."""
    for path, report in reports:
        if not isinstance(report, dict) or "benchmark_metadata" not in report or "model_results" not in report:
            raise SketchBenchError(path, "is not a sketchbench JSON report (no benchmark_metadata/model_results)",
                                   "pass files written by --sketch-json")
        check_report_version(path, report)


def merge_reports(reports: list[tuple[str, dict]]) -> tuple[dict, dict, list[str]]:
    """(metadata, records keyed 'model @ hardware', problems) of several runs.

    A model measured by two runs on the same hardware combines their figures (the later run's where both
    have one, every run's verdicts: the worst decides) and says so; runs on different test sets are refused;
    the same model (by content hash) on the
    same drawings must score the same everywhere (a mismatch is a problem: another file, another runtime
    version or an int8 kernel that differs by CPU).
    """
    check_reports(reports)
    records: dict[str, dict] = {}
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
            record.update(source=path, base_model=model, machine=label, speed_index=index)
            if key in records:  # e.g. accuracy in one job, timing in another: combined, the later run's first
                notes.append(f"{key} was measured by more than one run: figures combined, {path}'s where both "
                             "have one; every run's verdicts kept, the worst decides")
                earlier = records[key]
                if earlier.get("model_sha256") != record.get("model_sha256"):
                    notes.append(f"{key}: another file under the same name in {earlier['source']} "
                                 f"({str(earlier.get('model_sha256'))[:12]}) and {path} "
                                 f"({str(record.get('model_sha256'))[:12]})")
                record = combined(earlier, record)
            records[key] = record
    labels = _common_labels(reports)
    problems += accuracy_mismatches(records)
    metadata = {**reports[-1][1]["benchmark_metadata"], "merged_from": runs,
                "notes": notes + [f"error: {problem}" for problem in problems]}
    metadata["dataset"] = {**(metadata.get("dataset") or {}), "labels": labels}
    return metadata, records, problems


KEPT_FROM_EVERY_RUN = ("verdicts", "errors", "skipped", "baseline_rows")


def combined(earlier: dict, later: dict) -> dict:
    """One model measured by two runs on one machine: the later run's figures where both have one, but every
    run's verdicts, errors and skips, and the tests' outcomes added up — so a failure is never merged away."""
    record = {**earlier, **{k: v for k, v in later.items() if v not in (None, {}, [])}}
    for key in KEPT_FROM_EVERY_RUN:
        record[key] = [*(earlier.get(key) or []), *(later.get(key) or [])]
    outcomes = dict(earlier.get("outcomes") or {})
    for outcome, count in (later.get("outcomes") or {}).items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    record["outcomes"] = outcomes
    return record


def _common_labels(reports: list[tuple[str, dict]]) -> list[int] | None:
    """The test set's labels, which every run must share: runs on different test sets are refused."""
    datasets = [(path, r["benchmark_metadata"].get("dataset") or {}) for path, r in reports]
    first_path, first = datasets[0]
    for path, dataset in datasets[1:]:
        if dataset.get("fingerprint") != first.get("fingerprint"):
            raise SketchBenchError(path, f"was measured on another test set than {first_path} (fingerprint "
                                   f"{dataset.get('fingerprint')} vs {first.get('fingerprint')})",
                                   "merge runs of the same --sketch-data / --sketch-samples-per-category")
    return first.get("labels")


def accuracy_mismatches(records: dict) -> list[str]:
    """The same model (name and content hash; file size in reports without one) on the same drawings must
    answer the same on every machine."""
    seen: dict[tuple, tuple[str, dict]] = {}
    problems = []
    for key, record in records.items():
        if not record.get("accuracy") or not record.get("dataset_fingerprint"):
            continue
        identity = (record["base_model"], record.get("model_sha256")
                    or (record.get("model_info") or {}).get("file_size_bytes"), record["dataset_fingerprint"])
        if identity not in seen:
            seen[identity] = (key, record)
            continue
        first_key, first = seen[identity]
        if first.get("predicted") and record.get("predicted"):
            differ = sum(a != b for a, b in zip(first["predicted"], record["predicted"], strict=False))
        else:
            differ = int(first["accuracy"]["correct"] != record["accuracy"]["correct"])
        if differ:
            problems.append(f"{key} and {first_key}: the same model on the same drawings answered differently on "
                            f"{differ} drawings (accuracy {record['accuracy']['accuracy']:.4f} vs "
                            f"{first['accuracy']['accuracy']:.4f})")
            record.setdefault("errors", []).append(problems[-1])
    return problems


def speed_rows(records: dict) -> list[dict]:
    """Per model and machine: batch-1 p50, the machine's speed index and the p50 in calibration calls
    (p50 × speed index), the figure that compares across machines."""
    rows = []
    for key, record in records.items():
        timing = (record.get("timing") or {}).get(1)
        if not timing:
            continue
        index = record.get("speed_index")
        rows.append({"key": key, "model": record["base_model"], "machine": record["machine"],
                     "p50_ms": timing["median_ms"], "speed_index": index,
                     "calibration_calls": timing["median_ms"] / 1000 * index if index else None})
    return sorted(rows, key=lambda row: (row["model"], row["machine"]))
