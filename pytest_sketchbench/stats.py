"""Statistics as pure functions: latency summaries from raw timings (seconds), intervals, paired tests."""

from __future__ import annotations

import numpy as np

from pytest_sketchbench.results import LatencyStats

PERCENTILES = (50, 90, 95, 99)


def latency_stats(samples_s, batch_size: int = 1, timer: str = "sketchbench") -> LatencyStats:
    """Raw per-call timings (seconds) with their summary; times in milliseconds, throughput in drawings per
    second."""
    samples = np.asarray(samples_s, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("no timing samples")
    ms = samples * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, PERCENTILES)
    mean = float(ms.mean())
    return LatencyStats(
        rounds=int(samples.size), batch_size=int(batch_size), mean_ms=mean, median_ms=float(p50), p90_ms=float(p90),
        p95_ms=float(p95), p99_ms=float(p99), stddev_ms=float(ms.std(ddof=1)) if samples.size > 1 else 0.0,
        min_ms=float(ms.min()), max_ms=float(ms.max()), iqr_ms=float(np.subtract(*np.percentile(ms, [75, 25]))),
        p50_ci_ms=_listed(percentile_ci(ms, 50)), p90_ci_ms=_listed(percentile_ci(ms, 90)),
        p95_ci_ms=_listed(percentile_ci(ms, 95)), p99_ci_ms=_listed(percentile_ci(ms, 99)),
        throughput_per_s=batch_size / float(samples.mean()) if samples.mean() > 0 else float("inf"),
        timer=timer, samples_s=[float(x) for x in samples])


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [float(interval[0]), float(interval[1])]


def min_samples_for(quantile_pct: float, confidence: float = 0.99) -> int:
    """Fewest samples for which a percentile claim is estimable at ``confidence``: the chance that every
    sample lies below the true quantile, q**n, must fall under 1 - confidence (LoadGen's rule of
    thumb; p99 at 99 % → 459, p95 → 90, p90 → 44)."""
    q = quantile_pct / 100.0
    return int(np.ceil(np.log(1.0 - confidence) / np.log(q)))


def percentile_ci(samples, quantile_pct: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free (order-statistic) interval for a percentile, in the samples' unit; None when
    there are too few samples for one."""
    from scipy.stats import binom

    values = np.sort(np.asarray(samples, dtype=np.float64))
    n, q, alpha = values.size, quantile_pct / 100.0, 1.0 - confidence
    if n < 2:
        return None
    low = int(binom.ppf(alpha / 2, n, q)) - 1  # 0-based order statistics
    high = int(binom.ppf(1 - alpha / 2, n, q))
    if low < 0 or high >= n:
        return None
    return float(values[low]), float(values[high])


def ratio_of_quantiles(a_s, b_s, confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
                       quantile_pct: float = 50.0) -> dict:
    """median(a) / median(b) — or another quantile's ratio — with a paired bootstrap interval: round i of
    ``a`` and of ``b`` were timed side by side, so rounds are resampled together and drift that hit both
    cancels out."""
    a, b = np.asarray(a_s, dtype=np.float64), np.asarray(b_s, dtype=np.float64)
    if a.size != b.size or a.size < 2:
        raise ValueError("paired samples of equal length (>= 2) are needed")
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    for start in range(0, resamples, 250):  # chunks keep the index matrix small
        count = min(250, resamples - start)
        index = rng.integers(0, a.size, size=(count, a.size))
        ratios[start:start + count] = (np.percentile(a[index], quantile_pct, axis=1)
                                       / np.percentile(b[index], quantile_pct, axis=1))
    alpha = 1.0 - confidence
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return {"ratio": float(np.percentile(a, quantile_pct) / np.percentile(b, quantile_pct)), "ci_low": float(low),
            "ci_high": float(high), "rounds": int(a.size), "confidence": confidence, "statistic": f"p{quantile_pct:g}"}


# -- the stopping rule of every side-by-side speed decision ------------------------------------------
# A group-sequential design with Bonferroni alpha spending: at most LOOKS looks at the interval (after n,
# 2n, 4n interleaved rounds), each at confidence 1 - 2·FALSE_DECISION_RATE/LOOKS. By the union bound the
# chance of ever putting the whole interval past a limit the true ratio does not cross is at most
# FALSE_DECISION_RATE per side (1 % false fails, 1 % false passes), however many looks were taken; the first
# look decides when the ratio is far from its limit, so an idle run costs what one fixed-size run did.
LOOKS = 3
FALSE_DECISION_RATE = 0.01


def percent(confidence: float) -> str:
    """An interval's confidence as reports print it: 0.95 → '95%', 0.99333 → '99.3%'."""
    return f"{confidence * 100:.1f}".rstrip("0").rstrip(".") + "%"


def look_confidence(looks: int = LOOKS, rate: float = FALSE_DECISION_RATE) -> float:
    """The two-sided confidence of each look's interval."""
    return 1.0 - 2.0 * rate / looks


def side_of(low: float, high: float, bound: float) -> str:
    """Where an interval lies against a limit: 'above', 'below' or 'straddles' (not decided)."""
    return "above" if low > bound else "below" if high < bound else "straddles"


def decided(result: dict, bounds) -> bool:
    """Does the ratio's interval lie clearly on one side of every bound?"""
    return all(side_of(result["ci_low"], result["ci_high"], bound) != "straddles" for bound in bounds)


def sequential_ratio(more, first_rounds: int, bounds, quantile_pct=lambda: 50.0) -> tuple[dict, int, int]:
    """The stopping rule itself: ``more(n)`` times n more interleaved rounds and returns every (a, b) sample so
    far; the interval is looked at after n, 2n and 4n rounds and the loop stops once it lies clearly on one
    side of every bound. Returns (the last look's ratio and interval, looks taken, rounds timed)."""
    rounds, added = 0, first_rounds
    for look in range(1, LOOKS + 1):
        a, b = more(added)
        rounds += added
        result = ratio_of_quantiles(a, b, confidence=look_confidence(), quantile_pct=quantile_pct())
        if look == LOOKS or decided(result, bounds):
            return result, look, rounds
        added = rounds  # doubling
    raise AssertionError("unreachable")


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control over one run's pairwise tests),
    in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def mcnemar_exact(baseline_correct, current_correct) -> dict:
    """Paired comparison of two classifiers on the same drawings (two-sided exact binomial test on the
    drawings exactly one of them gets right)."""
    from scipy import stats

    baseline_correct = np.asarray(baseline_correct, bool)
    current_correct = np.asarray(current_correct, bool)
    lost = int(np.sum(baseline_correct & ~current_correct))  # right before, wrong now
    gained = int(np.sum(~baseline_correct & current_correct))
    discordant = lost + gained
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(lost, discordant, 0.5).pvalue)
    n = len(baseline_correct)
    return {"lost": lost, "gained": gained, "p_value": p_value,
            "baseline_accuracy": float(baseline_correct.mean()), "current_accuracy": float(current_correct.mean()),
            "change": (gained - lost) / n if n else 0.0}


def median_ratio_test(a_s, b_s) -> dict:
    """median(a) / median(b) of two *separately* timed sample sets, with a two-sided Mann–Whitney U
    p-value: the fallback where two models were not timed side by side."""
    from scipy import stats

    a, b = np.asarray(a_s, float), np.asarray(b_s, float)
    return {"ratio": float(np.median(a) / np.median(b)),
            "p_value": float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)}


def throughput_knee(throughput_by_batch: dict[int, float], min_gain: float = 0.10) -> dict:
    """The batch size beyond which a larger batch raises throughput by less than ``min_gain`` (10 %).

    Batches are taken in increasing order; the knee is the first batch whose next larger batch gains less.
    ``reached`` is False when every step still gained enough (the knee lies beyond the largest batch).
    """
    batches = sorted(throughput_by_batch)
    steps = [{"from": a, "to": b, "gain": throughput_by_batch[b] / throughput_by_batch[a] - 1}
             for a, b in zip(batches, batches[1:], strict=False) if throughput_by_batch[a] > 0]
    knee = next((step["from"] for step in steps if step["gain"] < min_gain), None)
    return {"knee_batch": knee if knee is not None else (batches[-1] if batches else None),
            "reached": knee is not None, "min_gain": min_gain, "steps": steps}
