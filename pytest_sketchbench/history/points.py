"""What a run adds to the history: one point per (model, metric), each with its interval where the run measured
one. The metric names are the history's vocabulary; a series is (model, metric) and, for a figure that depends on
the machine (milliseconds, drawings per second, megabytes), also the machine.

Figures that travel across machines come first: accuracy (Wilson interval), per category, and speed as a ratio to
a reference timed interleaved in the same run (its sequential interval).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_sketchbench.metrics import wilson_interval
from pytest_sketchbench.results import ModelResult


@dataclass(frozen=True)
class Point:
    model: str
    metric: str
    value: float
    low: float | None = None
    high: float | None = None
    machine_bound: bool = False  # an absolute figure: compared only with the same machine's
    higher_is_better: bool = False
    content_hash: str | None = None


def points_of(record: ModelResult) -> list[Point]:
    """Every figure of one model's result that history follows (nothing for a model that measured nothing)."""
    found: list[Point] = []
    model, sha = record.model, record.model_sha256

    def add(metric: str, value: float | None, low: float | None = None, high: float | None = None,
            machine_bound: bool = False, higher_is_better: bool = False) -> None:
        if value is not None:
            found.append(Point(model, metric, float(value), low, high, machine_bound, higher_is_better, sha))

    accuracy = record.accuracy
    if accuracy is not None and not record.categories_left_out:
        low, high = accuracy.accuracy_ci95
        add("accuracy", accuracy.accuracy, low, high, higher_is_better=True)
        if accuracy.top5_accuracy is not None:
            add("top5_accuracy", accuracy.top5_accuracy,
                *wilson_interval(round(accuracy.top5_accuracy * accuracy.n_samples), accuracy.n_samples),
                higher_is_better=True)
        for category, row in accuracy.per_category.items():
            add(f"accuracy:{category}", row.accuracy,
                *wilson_interval(round(row.accuracy * row.support), row.support), higher_is_better=True)
    for (reference, batch), ratio in sorted(record.relative_speed.items()):
        if not reference.startswith("baseline:"):  # a same-run A/B against the base branch is not a trend
            add(f"latency_ratio:{reference}@{batch}", ratio.get("ratio"), ratio.get("ci_low"), ratio.get("ci_high"))
    for batch, stats in sorted(record.timing.items()):
        interval = stats.p50_ci_ms
        add(f"p50_ms@{batch}", stats.median_ms, interval[0] if interval else None, interval[1] if interval else None,
            machine_bound=True)
        add(f"throughput@{batch}", stats.throughput_per_s, machine_bound=True, higher_is_better=True)
    if record.memory is not None:
        add("memory_growth_mb", record.memory.peak_growth_mb, machine_bound=True)
    size = record.file_size_bytes
    add("size_mb", size / 1e6 if size else None)
    return found
