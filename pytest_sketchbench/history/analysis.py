"""The history judged: each followed series searched for steps and drifts (:mod:`.changes`), and the gate of
``sketchbench history check`` / ``--sketch-history-check``: a regression past its size in the newest runs fails.

``[history]`` in ``thresholds.toml``::

    [history]
    metrics = ["accuracy", "latency_ratio:*", "memory_growth_mb", "size_mb"]  # fnmatch patterns
    min_change = 0.03                     # or a table by pattern, the first match counts (default below)
    window = 10                           # runs on each side a change is tested over
    alpha = 0.005                         # each change's significance
    newest = 5                            # check: a change this many runs from the end or closer is news
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.history.changes import Change, Settings, find_changes, new_point
from pytest_sketchbench.history.store import SeriesKey, SeriesPoint
from pytest_sketchbench.results import MEMORY_NOISE_MB

DEFAULT_METRICS = ["accuracy", "top5_accuracy", "latency_ratio:*", "p50_ms@*", "throughput@*", "memory_growth_mb",
                   "size_mb"]
# accuracy on the same drawings does not wobble: half a percent (0.46 points at 92 %) is already 30 drawings of
# 6,576; speed, memory and size move by a few percent between runs on a shared host
DEFAULT_MIN_CHANGE = {"accuracy": 0.005, "top5_accuracy": 0.005, "accuracy:*": 0.02, "*": 0.03}
# figures whose run-to-run noise is absolute: below this a change is not news, however large relative to 0
MIN_ABSOLUTE_CHANGE = {"memory_growth_mb": MEMORY_NOISE_MB}
KEYS = {"metrics", "min_change", "window", "alpha", "newest"}


@dataclass(frozen=True)
class HistorySettings:
    metrics: tuple[str, ...] = tuple(DEFAULT_METRICS)
    min_change: dict[str, float] | float = field(default_factory=lambda: dict(DEFAULT_MIN_CHANGE))
    window: int = 10
    alpha: float = 0.005  # scripts/build_history.py: 0.16 false alerts per 100 resampled points at 0.005
    newest: int = 5

    def follows(self, metric: str) -> bool:
        return any(fnmatch.fnmatchcase(metric, pattern) for pattern in self.metrics)

    def for_metric(self, metric: str) -> Settings:
        minimum = self.min_change
        if isinstance(minimum, dict):
            minimum = next((v for pattern, v in minimum.items() if fnmatch.fnmatchcase(metric, pattern)),
                           DEFAULT_MIN_CHANGE["*"])
        return Settings(min_change=minimum, min_absolute=MIN_ABSOLUTE_CHANGE.get(metric, 0.0), alpha=self.alpha,
                        window=self.window)


def settings_from(table: dict[str, Any], where: str) -> HistorySettings:
    """``[history]`` checked: a wrong key or value is one line naming it."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise SketchBenchError(f"{where} [history]", f"unknown key(s) {', '.join(unknown)}",
                               f"known: {', '.join(sorted(KEYS))}")
    settings = HistorySettings()
    metrics = table.get("metrics", list(settings.metrics))
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise SketchBenchError(f"{where} [history]", "'metrics' must be a list of metric names or patterns",
                               'e.g. metrics = ["accuracy", "latency_ratio:*"]')
    minimum = table.get("min_change", settings.min_change)
    values = list(minimum.values()) if isinstance(minimum, dict) else [minimum]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 10 for v in values):
        raise SketchBenchError(f"{where} [history]", "'min_change' must be a relative change (e.g. 0.03) or a table "
                               "of them by metric pattern", "")
    numbers = {"window": (3, 1000), "newest": (1, 1000)}
    for key, (low, high) in numbers.items():
        value = table.get(key, getattr(settings, key))
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise SketchBenchError(f"{where} [history]", f"'{key}' must be a whole number of runs, {low} to {high}", "")
    alpha = table.get("alpha", settings.alpha)
    if not isinstance(alpha, float | int) or isinstance(alpha, bool) or not 0 < alpha < 0.5:
        raise SketchBenchError(f"{where} [history]", "'alpha' must be a significance level between 0 and 0.5", "")
    return replace(settings, metrics=tuple(metrics), min_change=minimum, window=table.get("window", settings.window),
                   alpha=float(alpha), newest=table.get("newest", settings.newest))


@dataclass(frozen=True)
class Finding:
    """A change in one series, with the runs on either side of it."""

    key: SeriesKey
    change: Change
    points: tuple[SeriesPoint, ...]
    higher_is_better: bool

    @property
    def regression(self) -> bool:
        return self.change.relative < 0 if self.higher_is_better else self.change.relative > 0

    def describe(self) -> str:
        """'onnx latency_ratio:calibration@1 +10.2 % at commit 3f2a1c9 (run 21 of 34): 12.9 [12.7–13.1] → …'."""
        model, metric, machine = self.key
        change, at = self.change, self.points[self.change.start]
        (b_low, b_high), (a_low, a_high) = change.before_interval, change.after_interval
        what = {"drift": "drift", "step": "step", "new": "newest run off its history"}[change.kind]
        span = f"runs {change.start + 1}–{change.index + 1}" if change.kind == "drift" else f"run {change.index + 1}"
        commit = (at.run.commit or at.run.run_id)[:12]
        return (f"{model} {metric}{f' on {machine}' if machine else ''}: {what} of {change.relative:+.1%} "
                f"{'(regression)' if self.regression else '(improvement)'} at commit {commit} ({span} of "
                f"{len(self.points)}): {change.before:.4g} [{b_low:.4g}–{b_high:.4g}] → {change.after:.4g} "
                f"[{a_low:.4g}–{a_high:.4g}], p = {change.p_value:.2g}")


def half_widths(points: list[SeriesPoint]) -> np.ndarray | None:
    widths = [(p.high - p.low) / 2 for p in points if p.low is not None and p.high is not None]
    return np.asarray(widths) if len(widths) == len(points) and widths else None


def analyse(series: dict[SeriesKey, list[SeriesPoint]], settings: HistorySettings) -> list[Finding]:
    """Every step and drift in every followed series, in series order."""
    findings = []
    for key, points in sorted(series.items()):
        if not settings.follows(key[1]):
            continue
        values = np.asarray([p.value for p in points], dtype=np.float64)
        if not np.isfinite(values).all():
            continue
        metric_settings = settings.for_metric(key[1])
        changes = find_changes(values, half_widths(points), metric_settings)
        latest = new_point(values, metric_settings)
        if latest is not None and not any(c.index >= latest.start for c in changes):
            changes.append(latest)
        findings += [Finding(key, change, tuple(points), points[-1].higher_is_better) for change in changes]
    return findings


def news(findings: list[Finding], settings: HistorySettings) -> list[Finding]:
    """The regressions among the newest runs: what ``history check`` fails on."""
    return [f for f in findings if f.regression and len(f.points) - 1 - f.change.index < settings.newest]


def content_changes(points: list[SeriesPoint]) -> list[int]:
    """The runs where the model's files changed (another content hash than the run before)."""
    return [i for i in range(1, len(points)) if points[i].content_hash != points[i - 1].content_hash
            and points[i].content_hash is not None and points[i - 1].content_hash is not None]
