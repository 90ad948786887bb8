"""Change points and drifts in one series of run figures.

Candidates come from ``ruptures``' PELT on the series (an L2 cost: a shift of the mean), with a penalty of ``penalty
× σ² × ln n`` where σ is the run-to-run noise history shows (the robust spread of successive differences, at least
the typical half-width of the runs' own intervals ÷ 1.96). Each candidate must then pass a two-sided Welch t-test
between up to ``window`` runs on either side, at ``alpha`` (0.005; Otava's E-divisive uses 0.001:
``scripts/build_history.py`` shows what each finds in real runs), and shift the level by at least ``min_change``
(relative) and ``min_absolute`` (memory: RSS noise); a failing candidate is dropped and its neighbours retested over
the merged levels. A change smaller than the noise, or than what the user cares about, is never an alert. ``window``
runs that rise or fall steadily (Kendall's τ at ``alpha``, a line fitting clearly better than one jump) are a drift:
a 3 % step every run that each pairwise gate passes. The newest run alone is judged against the prediction interval
of the runs before it (:func:`new_point`).

Why ruptures: it is maintained, needs only numpy and scipy, and PELT is exact for this cost. MongoDB's
``signal-processing-algorithms`` (E-divisive) pins numpy < 2 and gevent; Apache Otava 0.8.0 pins numpy 2.2.0 and
pulls cloud clients. The significance test on top keeps the false-alert rate where ``alpha`` puts it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Settings:
    min_change: float = 0.03  # smallest relative level shift that is reported
    min_absolute: float = 0.0  # and the smallest absolute one (a figure that can sit at 0, such as RSS growth)
    alpha: float = 0.005  # the significance of the test each candidate must pass
    window: int = 10  # runs on each side the test compares (and a drift's longest span)
    min_size: int = 3  # fewest runs in a level: a single outlier is not a change
    penalty: float = 3.0  # PELT's penalty, in σ² ln n
    drift_min_runs: int = 5  # a steady trend over fewer runs is not called a drift

    def too_small(self, before: float, after: float) -> bool:
        """A shift under the relative minimum, or under the figure's absolute one, is not news."""
        return abs(after - before) < self.min_absolute or abs(relative_change(before, after)) < self.min_change


def relative_change(before: float, after: float) -> float:
    """The shift as a share of the level before it (infinite from a level of 0)."""
    return (after - before) / abs(before) if before else math.inf


@dataclass(frozen=True)
class Change:
    """A level shift at ``index`` (the first run after it), or a drift from ``start`` to ``index``."""

    kind: str  # "step", "drift", or "new" (the newest run off the prediction interval of the runs before it)
    index: int
    start: int
    before: float
    after: float
    before_interval: tuple[float, float]
    after_interval: tuple[float, float]
    p_value: float

    @property
    def relative(self) -> float:
        return relative_change(self.before, self.after)


def noise_of(values: np.ndarray, half_widths: np.ndarray | None = None) -> float:
    """Run-to-run noise: the robust spread of successive differences (÷ √2), and at least the runs' own
    typical interval (half-width ÷ 1.96); never zero, so a constant series is not infinitely sensitive."""
    diffs = np.diff(values)
    spread = float(np.median(np.abs(diffs - np.median(diffs))) / 0.6745 / math.sqrt(2)) if diffs.size else 0.0
    own = float(np.median(half_widths) / 1.96) if half_widths is not None and half_widths.size else 0.0
    return max(spread, own, 1e-9 * max(1.0, float(np.max(np.abs(values)))))


def _level(values: np.ndarray) -> tuple[float, tuple[float, float]]:
    """A level's mean and its 95 % interval (t, or the value itself for one run)."""
    from scipy import stats

    mean = float(np.mean(values))
    if values.size < 2:
        return mean, (mean, mean)
    half = float(stats.t.ppf(0.975, values.size - 1) * np.std(values, ddof=1) / math.sqrt(values.size))
    return mean, (mean - half, mean + half)


def _welch_p(before: np.ndarray, after: np.ndarray) -> float:
    from scipy import stats

    if np.ptp(before) == 0 and np.ptp(after) == 0:  # deterministic figures (accuracy on the same drawings)
        return 0.0 if before[0] != after[0] else 1.0
    with warnings.catch_warnings():  # runs that repeat a value exactly: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(before, after, equal_var=False).pvalue)


def _candidates(values: np.ndarray, sigma: float, settings: Settings) -> list[int]:
    import ruptures

    if values.size < 2 * settings.min_size:
        return []
    penalty = settings.penalty * sigma ** 2 * math.log(values.size)
    algorithm = ruptures.Pelt(model="l2", min_size=settings.min_size, jump=1).fit(values.reshape(-1, 1))
    return [index for index in algorithm.predict(pen=penalty) if index < values.size]


def _tested(values: np.ndarray, index: int, low: int, high: int, settings: Settings) -> Change | None:
    """The candidate at ``index`` tested between its neighbours (``low``/``high``: the next candidates)."""
    before = values[max(low, index - settings.window):index]
    after = values[index:min(high, index + settings.window)]
    if before.size < settings.min_size or after.size < settings.min_size:
        return None
    (mean_before, interval_before), (mean_after, interval_after) = _level(before), _level(after)
    p_value = _welch_p(before, after)
    change = Change("step", index, index, mean_before, mean_after, interval_before, interval_after, p_value)
    if p_value > settings.alpha or settings.too_small(change.before, change.after):
        return None
    return change


def _steps(series: np.ndarray, candidates: list[int], settings: Settings) -> list[Change]:
    """The candidates that pass, each tested against its neighbours; a failing one is dropped (the weakest
    first) and its neighbours are tested again over the merged levels, as Otava merges weak change points."""
    candidates = list(candidates)
    while True:
        bounds = [0, *candidates, series.size]
        tested = [_tested(series, index, bounds[i], bounds[i + 2], settings) for i, index in enumerate(candidates)]
        failing = [i for i, change in enumerate(tested) if change is None]
        if not failing:
            return [change for change in tested if change is not None]
        weakest = max(failing, key=lambda i: _welch_p(series[bounds[i]:candidates[i]],
                                                      series[candidates[i]:bounds[i + 2]]))
        del candidates[weakest]


def _step_fits_better(window: np.ndarray, slope: float, intercept: float) -> bool:
    """A jump between two flat levels explains the window at least as well as a line: a step, not a drift
    (a large step makes a window look monotone to Kendall's τ too)."""
    line = float(np.sum((window - (intercept + slope * np.arange(window.size))) ** 2))
    best_step = min(float(np.sum((window[:k] - window[:k].mean()) ** 2) + np.sum((window[k:] - window[k:].mean()) ** 2))
                    for k in range(2, window.size - 1))
    return best_step <= 2 * line  # a drift needs a line clearly better than any one jump


def _levels_fit_better(span: np.ndarray, cuts: list[int]) -> bool:
    """Flat levels between ``cuts`` leave less unexplained than one line through ``span``."""
    slope, intercept = np.polyfit(np.arange(span.size), span, 1)
    line = float(np.sum((span - (intercept + slope * np.arange(span.size))) ** 2))
    levels = sum(float(np.sum((part - part.mean()) ** 2)) for part in np.split(span, cuts) if part.size)
    return levels < line


def _drifts(series: np.ndarray, settings: Settings) -> list[tuple[int, int, float]]:
    """Spans (first, last, p) where every ``window`` runs rise or fall steadily: Kendall's τ at ``alpha`` and a
    fitted change of at least ``min_change``, where a line fits the window better than one jump does."""
    from scipy import stats

    size = min(settings.window, series.size)
    spans: list[tuple[int, int, float]] = []
    if size < settings.drift_min_runs:
        return spans
    for first in range(series.size - size + 1):
        window = series[first:first + size]
        if np.ptp(window) == 0:
            continue
        slope, intercept = np.polyfit(np.arange(size), window, 1)
        start, end = float(intercept), float(intercept + slope * (size - 1))
        p_value = float(stats.kendalltau(np.arange(size), window).pvalue)
        if p_value > settings.alpha or not start or settings.too_small(start, end) \
                or _step_fits_better(window, slope, intercept):
            continue
        if spans and first <= spans[-1][1]:  # overlapping windows: one drift
            spans[-1] = (spans[-1][0], first + size - 1, min(spans[-1][2], p_value))
        else:
            spans.append((first, first + size - 1, p_value))
    return spans


def new_point(values: np.ndarray, settings: Settings) -> Change | None:
    """The newest run against the prediction interval of the ``window`` runs before it (as Bencher's t-test
    threshold): a new point outside it, by ``min_change`` or more, is news before any change point can show
    (a step needs ``min_size`` runs after it)."""
    from scipy import stats

    history, newest = values[-settings.window - 1:-1], float(values[-1])
    if history.size < settings.min_size:
        return None
    mean, spread = float(np.mean(history)), float(np.std(history, ddof=1))
    if spread == 0:
        p_value = 0.0 if newest != mean else 1.0
        half = 0.0
    else:
        score = (newest - mean) / (spread * math.sqrt(1 + 1 / history.size))
        p_value = float(2 * stats.t.sf(abs(score), history.size - 1))
        half = float(stats.t.ppf(1 - settings.alpha / 2, history.size - 1) * spread * math.sqrt(1 + 1 / history.size))
    change = Change("new", values.size - 1, values.size - 1, mean, newest, (mean - half, mean + half),
                    (newest, newest), p_value)
    if p_value > settings.alpha or settings.too_small(change.before, change.after):
        return None
    return change


def find_changes(values: list[float] | np.ndarray, half_widths: list[float] | np.ndarray | None = None,
                 settings: Settings | None = None) -> list[Change]:
    """Every significant step and drift in one series, oldest first (a step inside a drift is the drift)."""
    settings = settings or Settings()
    series = np.asarray(values, dtype=np.float64)
    widths = None if half_widths is None else np.asarray(half_widths, dtype=np.float64)
    steps = _steps(series, _candidates(series, noise_of(series, widths), settings), settings)
    changes: list[Change] = []
    for first, last, p_value in _drifts(series, settings):
        inside = [step.index for step in steps if first < step.index <= last]
        if len(inside) > 1 and _levels_fit_better(series[first:last + 1], [i - first for i in inside]):
            continue  # two or more significant level changes explain the span better than a ramp: they are news
        (before, before_interval) = _level(series[max(0, first - settings.window):first + 1])
        (after, after_interval) = _level(series[last:last + settings.window])
        changes.append(Change("drift", last, first, before, after, before_interval, after_interval, p_value))
    changes += [step for step in steps if not any(d.start <= step.index <= d.index for d in changes)]
    return sorted(changes, key=lambda change: change.index)
