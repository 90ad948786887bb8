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


def speed_index_text(index: dict | None, baseline: dict | None = None) -> str:
    """'; machine speed index 10,900 calibration calls/s' (and the baseline's, with the ratio)."""
    if not index or not index.get("calls_per_s"):
        return ""
    text = f"; machine speed index {index['calls_per_s']:,.0f} calibration calls/s"
    if baseline and baseline.get("calls_per_s"):
        text += (f" (baseline's machine: {baseline['calls_per_s']:,.0f}/s, this one ×"
                 f"{index['calls_per_s'] / baseline['calls_per_s']:.2f})")
    return text


def category_mapping_text(record: dict) -> str | None:
    """'categories matched by name, closed-set …; open-set acc 0.871, 3.2 % of answers outside …'."""
    mapping = record.get("category_mapping")
    if not mapping:
        return None
    open_set = (record.get("accuracy") or {}).get("open_set")
    return f"categories matched {mapping}" + (
        f"; open-set acc {open_set['accuracy']:.3f}{' (the gated figure)' if open_set.get('gated') else ''}, "
        f"{open_set['outside_rate']:.1%} of answers outside the dataset's categories" if open_set else "")


def model_status(record: dict) -> str:
    """One word for a model's outcome, from its tests: error > failed > passed > skipped > not run."""
    outcomes = record.get("outcomes") or {}
    if record.get("errors") or outcomes.get("error"):
        return "error"
    if outcomes.get("failed"):
        return "failed"
    if outcomes.get("passed"):
        return "passed"
    if outcomes.get("skipped") or record.get("skipped"):
        return "skipped"
    return "not run"


STATUS_MARK = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️", "not run": "—"}


def largest_batch_throughput(record: dict) -> tuple[int, float] | tuple[None, None]:
    """The one throughput the reports show and ``min_throughput`` gates: at the largest batch measured."""
    timing = record.get("timing", {})
    if not timing:
        return None, None
    batch = max(timing, key=int)
    return int(batch), timing[batch]["throughput_per_s"]


def failed_check_details(record: dict) -> list[str]:
    """Each failed check as 'what: measured vs limit' — its verdict message says both."""
    return [v["message"] for v in record.get("verdicts", []) if v.get("passed") is False]


def winners(values: dict[str, float], lowest: bool = False, digits: int = 9) -> str | None:
    """The best model, or every model tied for best ("a = b (tie)") — never one crowned among equals."""
    if not values:
        return None
    rounded = {m: round(v, digits) for m, v in values.items()}
    best = (min if lowest else max)(rounded.values())
    tied = [m for m, v in rounded.items() if v == best]
    return tied[0] if len(tied) == 1 else " = ".join(tied) + " (tie)"


def comparison(results: dict) -> dict:
    """Best accuracy, fastest, most consistent (ties named as ties), rankings, categories models disagree on."""
    accurate = {m: r["accuracy"]["accuracy"] for m, r in results.items() if r.get("accuracy")}
    batch1 = {m: t for m, t in ((m, batch1_timing(r)) for m, r in results.items()) if t}
    latency = {m: t["median_ms"] for m, t in batch1.items()}
    spread = {m: t["iqr_ms"] / t["median_ms"] for m, t in batch1.items() if t["median_ms"] > 0}
    out = {
        "best_accuracy": winners(accurate),
        "fastest": winners(latency, lowest=True),
        "most_consistent": winners(spread, lowest=True),
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
