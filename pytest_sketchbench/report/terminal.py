"""The end-of-run console summary: a line per model, the checks and the comparison; respects -q and -v."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from pytest_sketchbench.results import ModelResult

import pytest

from pytest_sketchbench.report.analysis import (
    detail_lines,
    extreme_categories,
    fmt,
    inconclusive_checks,
    largest_batch_throughput,
    model_status,
    verdict_counts,
)
from pytest_sketchbench.report.pairwise import pair_statements


def skip_summary(reasons: list[str], models: list[str], limit: int = 4) -> str | None:
    """'skipped 12: 6× no baseline given (--sketch-baseline); 4× …' — why tests skipped, in one line without -rs.
    A leading 'model: ' or 'model ' is dropped so the same reason for several models counts once."""
    if not reasons:
        return None
    counts: dict[str, int] = {}
    for reason in reasons:
        reason = reason.removeprefix("Skipped: ")
        for model in sorted(models, key=len, reverse=True):
            if reason.startswith((f"{model}: ", f"{model} ")):
                reason = reason[len(model) + 1:].lstrip(": ")
                break
        if reason.startswith("inconclusive:"):
            reason = "inconclusive (the INCONCLUSIVE lines above say why)"
        reason = reason if len(reason) <= 90 else reason[:89] + "…"
        counts[reason] = counts.get(reason, 0) + 1
    common = sorted(counts.items(), key=lambda item: -item[1])
    shown = "; ".join(f"{n}× {reason}" for reason, n in common[:limit])
    rest = sum(n for _, n in common[limit:])
    return f"skipped {len(reasons)}: {shown}" + (f"; {rest} more (-rs lists each)" if rest else "")


def write_summary(reporter: TerminalReporter, results: dict[str, ModelResult], config: pytest.Config,
                  summary: dict[str, Any], notes: list[str] | None = None, index_line: str = "",
                  host_line: str = "") -> None:
    """The sketchbench section of the terminal summary; ``summary`` is the run's one cross-model comparison."""
    verbosity = config.get_verbosity()
    if not results or verbosity <= -2:  # -qq: pass/fail only
        return
    reporter.write_sep("=", "sketchbench summary")
    for name, record in results.items():
        accuracy, timing, memory = record.accuracy, record.batch1(), record.memory
        line = f"{name:<12}"
        if accuracy:
            low, high = accuracy.accuracy_ci95
            line += (f" acc {accuracy.accuracy:.3f} [{low:.3f}–{high:.3f}]"
                     f"  top5 {fmt(accuracy.top5_accuracy, missing='n/a')}"
                     f"  macro P/R/F1 {accuracy.macro_precision:.3f}/{accuracy.macro_recall:.3f}/"
                     f"{accuracy.macro_f1:.3f}")
        if timing:
            line += (f"  latency@{timing.batch_size} mean/p50/p95 {timing.mean_ms:.3f}/"
                     f"{timing.median_ms:.3f}/{timing.p95_ms:.3f} ms")
        batch, throughput = largest_batch_throughput(record)
        if throughput:
            line += f"  {throughput:,.0f}/s @{batch}"
        if memory:
            line += f"  mem +{memory.peak_growth_mb:.0f} MB"
        status = model_status(record)
        if status != "passed":
            line += f"  [{status.upper()}]"
        if record.errors:
            more = len(record.errors) - 1  # the first is the cause; the rest usually follow from it
            line += f"  ERROR: {record.errors[0]}" + (f" (+{more} more in the reports)" if more else "")
        elif record.skipped and not accuracy:
            line += f"  skipped: {record.skipped[-1]}"
        reporter.write_line(line)
        for detail in detail_lines(record, verbose=verbosity > 0):
            reporter.write_line(f"    {detail}")
        if verbosity > 0 and accuracy:
            best, worst = extreme_categories(accuracy, 3)
            reporter.write_line("    best:  " + ", ".join(f"{c} {a:.3f}" for c, a in best))
            reporter.write_line("    worst: " + ", ".join(f"{c} {a:.3f}" for c, a in worst))
            if verbosity > 1:
                for batch, stats in sorted(record.timing.items()):
                    reporter.write_line(f"    batch {batch:>4}: p50 {stats.median_ms:.3f} ms, p99 "
                                        f"{stats.p99_ms:.3f} ms, {stats.throughput_per_s:,.0f}/s "
                                        f"({stats.rounds} rounds, {stats.timer})")
    parts = [f"{label}: {summary[key]}" for key, label in
             (("best_accuracy", "best accuracy"), ("fastest", "fastest"), ("most_consistent", "most consistent"))
             if summary.get(key)]
    if len(results) > 1 and verbosity >= 0 and (parts or summary.get("pairs")):
        reporter.write_line("comparison: " + ("; ".join(parts) or "(no shared figure)"))
        for pair in summary.get("pairs", []):
            reporter.write_line("  " + "; ".join(pair_statements(pair)))
    rows = [row for record in results.values() for row in record.baseline_rows]
    if rows:
        reporter.write_line("compared with the baseline:")
        for row in rows:
            reporter.write_line(f"  {row.line()}")
    if index_line:
        reporter.write_line(index_line.lstrip("; "))
    if host_line:
        reporter.write_line(host_line)
    counts = verdict_counts(results)
    reporter.write_line(f"gates: {counts['passed']} passed, {counts['failed']} failed, {counts['inconclusive']} "
                        f"inconclusive; {counts['measured']} measured, not gated (no limit set)")
    for name, record in results.items():
        for message in inconclusive_checks(record):
            reporter.write_line(f"INCONCLUSIVE {name}: {message.removeprefix('inconclusive: ')}")
    for note in notes or []:
        reporter.write_line(f"note: {note}")

