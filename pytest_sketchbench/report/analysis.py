"""Cross-model comparison over result records (pure functions over plain dicts)."""

from __future__ import annotations

import numpy as np


def extreme_categories(accuracy: dict, n: int = 3) -> tuple[list, list]:
    """The n best and n worst categories by accuracy."""
    ranked = sorted(((c, row["accuracy"]) for c, row in accuracy["per_category"].items()), key=lambda x: -x[1])
    return ranked[:n], ranked[::-1][:n]


def fmt(value, spec: str = ".3f", missing: str = "—") -> str:
    """A figure for a report cell; ``missing`` where nothing was measured."""
    return missing if value is None else format(value, spec)


def batch1_timing(record: dict) -> dict | None:
    """Latency statistics at batch 1, or at the smallest batch measured."""
    timing = record.get("timing", {})
    return timing.get("1") or (timing[min(timing, key=int)] if timing else None)


def comparison(results: dict) -> dict:
    """Best accuracy, fastest, most consistent, rankings, and categories models disagree on most."""
    accurate = {m: r["accuracy"]["accuracy"] for m, r in results.items() if r.get("accuracy")}
    batch1 = {m: t for m, t in ((m, batch1_timing(r)) for m, r in results.items()) if t}
    latency = {m: t["median_ms"] for m, t in batch1.items()}
    spread = {m: t["iqr_ms"] / t["median_ms"] for m, t in batch1.items() if t["median_ms"] > 0}
    out = {
        "best_accuracy": max(accurate, key=accurate.get) if accurate else None,
        "fastest": min(latency, key=latency.get) if latency else None,
        "most_consistent": min(spread, key=spread.get) if spread else None,
        "accuracy_ranking": sorted(accurate, key=lambda m: -accurate[m]),
        "latency_ranking": sorted(latency, key=lambda m: latency[m]),
        "category_variance": [],
    }
    with_categories = [r["accuracy"]["per_category"] for r in results.values() if r.get("accuracy")]
    if len(with_categories) > 1:
        names = list(with_categories[0])
        variance = {c: float(np.var([pc[c]["accuracy"] for pc in with_categories if c in pc])) for c in names}
        out["category_variance"] = [{"category": c, "variance": v}
                                    for c, v in sorted(variance.items(), key=lambda kv: -kv[1])[:5]]
    return out
