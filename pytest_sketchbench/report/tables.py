"""Per-category confusion outputs for ``--sketch-report-dir``: CSVs, PNGs and a Markdown summary."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pytest_sketchbench.codec import baseline_rows_in, category_table_of
from pytest_sketchbench.files import safe_name
from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import (
    STATUS_MARK,
    detail_lines,
    extreme_categories,
    failed_check_details,
    fmt,
    inconclusive_checks,
    largest_batch_throughput,
    model_status,
)
from pytest_sketchbench.report.pairwise import pair_statements
from pytest_sketchbench.results import Accuracy, CategoryTable, ModelResult

RESULT_COLUMNS = ["model", "status", "runtime", "device", "accuracy", "ci95_low", "ci95_high", "top5_accuracy",
                  "macro_f1", "p50_ms_batch1", "p95_ms_batch1", "throughput_batch", "throughput_per_s",
                  "peak_memory_growth_mb", "model_mb", "load_s", "failed_checks", "inconclusive_checks", "model_sha256"]


def _csv(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def confusion_csv(accuracy: Accuracy) -> str:
    labels = accuracy.labels
    return _csv([["true \\ predicted", *labels],
                 *([label, *row] for label, row in zip(labels, accuracy.confusion_matrix, strict=True))])


def per_category_csv(accuracy: Accuracy) -> str:
    return _csv([["category", "precision", "recall", "f1", "support", "accuracy"],
                 *([category, f"{row.precision:.6f}", f"{row.recall:.6f}", f"{row.f1:.6f}",
                    row.support, f"{row.accuracy:.6f}"] for category, row in accuracy.per_category.items())])


def category_by_model_csv(table: CategoryTable) -> str:
    """Rows = categories, columns = models: where models differ."""
    return _csv([["category", *table.models],
                 *([category, *("" if a is None else f"{a:.6f}" for a in row)]
                   for category, row in zip(table.categories, table.accuracy, strict=True))])


def result_row(model: str, record: ModelResult) -> dict[str, Any]:
    accuracy, batch1 = record.accuracy, record.timing.get(1)
    failed = [v.check for v in record.failed_checks()]
    throughput_batch, throughput = largest_batch_throughput(record)
    size = record.file_size_bytes
    return {
        "model": model, "status": model_status(record), "runtime": (record.model_info or {}).get("runtime"),
        "device": record.device, "accuracy": accuracy.accuracy if accuracy else None,
        "ci95_low": accuracy.accuracy_ci95[0] if accuracy else None,
        "ci95_high": accuracy.accuracy_ci95[1] if accuracy else None,
        "top5_accuracy": accuracy.top5_accuracy if accuracy else None,
        "macro_f1": accuracy.macro_f1 if accuracy else None,
        "p50_ms_batch1": batch1.median_ms if batch1 else None, "p95_ms_batch1": batch1.p95_ms if batch1 else None,
        "throughput_batch": throughput_batch, "throughput_per_s": throughput,
        "peak_memory_growth_mb": record.memory.peak_growth_mb if record.memory else None,
        "model_mb": size / 1e6 if size else None,
        "load_s": record.load_s, "failed_checks": ";".join(failed) + (";error" if record.errors else ""),
        "inconclusive_checks": ";".join(v.check for v in record.inconclusive_checks()),
        "model_sha256": record.model_sha256,
    }


def results_csv(results: dict[str, ModelResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RESULT_COLUMNS)
    writer.writeheader()
    for model, record in results.items():
        writer.writerow(result_row(model, record))
    return buffer.getvalue()


def summary_markdown(results: dict[str, ModelResult], summary: dict[str, Any], baseline: dict[str, Any] | None = None,
                     hardware_line: str = "", notes: list[str] | None = None) -> str:
    """A Markdown table sized for ``$GITHUB_STEP_SUMMARY``; each failed check with measured vs limit below it."""
    lines = ["## sketchbench results", ""]
    if hardware_line:
        lines += [f"_{hardware_line}_", ""]
    lines += ["| model | status | accuracy (95% CI) | top-5 | macro F1 | p50 / p95 @1 (ms) | throughput (/s) "
              "| memory (MB) |", "|---|---|---|---|---|---|---|---|"]
    failures = []
    for model, record in results.items():
        row = result_row(model, record)
        ci = (f" ({row['ci95_low']:.3f}–{row['ci95_high']:.3f})" if row["ci95_low"] is not None else "")
        throughput = (f"{row['throughput_per_s']:,.0f} @{row['throughput_batch']}"
                      if row["throughput_per_s"] is not None else "—")
        lines.append(
            f"| {model} | {STATUS_MARK[row['status']]} {row['status']} | {fmt(row['accuracy'], '.3f')}{ci} "
            f"| {fmt(row['top5_accuracy'], '.3f')} | {fmt(row['macro_f1'], '.3f')} | {fmt(row['p50_ms_batch1'], '.3f')}"
            f" / {fmt(row['p95_ms_batch1'], '.3f')} | {throughput} | {fmt(row['peak_memory_growth_mb'], '.0f')} |")
        failures += [f"- ❌ {message}" for message in failed_check_details(record)]
        failures += [f"- 💥 {error}" for error in record.errors]
        failures += [f"- ❔ {message}" for message in inconclusive_checks(record)]
        failures += [f"- ⏭️ {model} skipped: {reason}" for reason in record.skipped]
    lines += ["", "Throughput: drawings per second at the largest batch size measured (what `min_throughput` "
              "gates)."]
    if failures:
        lines += ["", "### Failed checks, errors, inconclusive checks and skips", "", *failures]
    if len(results) > 1:
        lines += ["", f"**Best accuracy:** {summary['best_accuracy']} · **fastest:** {summary['fastest']} · "
                      f"**most consistent:** {summary['most_consistent']}"]
    pairs = [" · ".join(pair_statements(pair)) for pair in summary.get("pairs", [])]
    if pairs:
        lines += ["", "**Every pair** (McNemar exact p, Holm-adjusted over the pairs, for accuracy; batch-1 latency "
                      "ratio timed side by side):", "",
                  *[f"- {pair}" for pair in pairs], ""]
    for model, record in results.items():
        lines += [f"- **{model}**: {detail}" for detail in detail_lines(record)]
        if record.accuracy:
            best, worst = extreme_categories(record.accuracy, 3)
            lines.append(f"- **{model}** worst categories: " + ", ".join(f"{c} {a:.3f}" for c, a in worst)
                         + "; best: " + ", ".join(f"{c} {a:.3f}" for c, a in best))
    if baseline:
        lines += ["", "### Compared with the baseline", "", "| model | metric | baseline | current | change "
                  "| p-value | verdict |", "|---|---|---|---|---|---|---|"]
        for compared in baseline_rows_in(baseline.get("rows")):
            before, now, change, p_value = compared.cells()
            lines.append(f"| {compared.model} | {compared.metric} | {before} | {now} | {change} | {p_value or '—'} "
                         f"| {compared.verdict} |")
    if notes:
        lines += ["", "### Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def report_dir_files(directory: str | Path, results: dict[str, ModelResult], summary: dict[str, Any],
                     baseline: dict[str, Any] | None = None, hardware_line: str = "",
                     notes: list[str] | None = None) -> dict[Path, str | bytes]:
    """Every file of ``--sketch-report-dir``, by path: per model its confusion matrix (CSV, PNG) and
    per-category table, then ``results.csv`` and ``summary.md``; ``summary`` is the run's one comparison."""
    directory = Path(directory)
    files: dict[Path, str | bytes] = {}
    for model, record in results.items():
        accuracy = record.accuracy
        if not accuracy:
            continue
        folder = directory / safe_name(model)
        files[folder / "confusion.csv"] = confusion_csv(accuracy)
        files[folder / "per_category.csv"] = per_category_csv(accuracy)
        png = charts.confusion_png(accuracy, f"{model}: confusion matrix (row-normalised)")
        if png is not None:
            files[folder / "confusion.png"] = png
    files[directory / "results.csv"] = results_csv(results)
    files[directory / "category_by_model.csv"] = category_by_model_csv(category_table_of(summary["category_by_model"]))
    files[directory / "summary.md"] = summary_markdown(results, summary, baseline, hardware_line, notes)
    return files
