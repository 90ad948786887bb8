"""Latency statistics from raw timings (seconds), as pure functions."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def latency_stats(samples_s, batch_size: int = 1) -> dict[str, float]:
    """Summary of raw per-call timings; times in milliseconds, throughput in drawings per second."""
    samples = np.asarray(samples_s, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("no timing samples")
    ms = samples * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, PERCENTILES)
    mean = float(ms.mean())
    return {
        "rounds": int(samples.size),
        "batch_size": int(batch_size),
        "mean_ms": mean,
        "median_ms": float(p50),
        "p90_ms": float(p90),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "stddev_ms": float(ms.std(ddof=1)) if samples.size > 1 else 0.0,
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "iqr_ms": float(np.subtract(*np.percentile(ms, [75, 25]))),
        # sustained rate: drawings over total time, so slow outliers count
        "throughput_per_s": batch_size / float(samples.mean()) if samples.mean() > 0 else float("inf"),
    }
