"""Cross-model comparison over result records (pure functions over plain dicts)."""

from __future__ import annotations

import numpy as np

from pytest_sketchbench.metrics import cost_per_1000
from pytest_sketchbench.report.pairwise import category_by_model, model_pairs, tied_with_best


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
    return timing.get(1) or (timing[min(timing)] if timing else None)


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
    """One word for a model's outcome, from its tests and checks: error > failed > inconclusive > passed >
    skipped > not run. A model with any check its evidence could not decide is never "passed"."""
    outcomes = record.get("outcomes") or {}
    if record.get("errors") or outcomes.get("error"):
        return "error"
    if outcomes.get("failed") or any(v.get("passed") is False for v in record.get("verdicts", [])):
        return "failed"
    if inconclusive_checks(record):
        return "inconclusive"
    if outcomes.get("passed"):
        return "passed"
    if outcomes.get("skipped") or record.get("skipped"):
        return "skipped"
    return "not run"


STATUS_MARK = {"passed": "✅", "failed": "❌", "error": "💥", "inconclusive": "❔", "skipped": "⏭️", "not run": "—"}
STATUSES = tuple(STATUS_MARK)


def verdict_status(verdict: dict) -> str:
    """A recorded check's outcome; reports written before 'status' existed say it through 'passed' alone."""
    return verdict.get("status") or {True: "passed", False: "failed"}.get(verdict.get("passed"), "measured")


def inconclusive_checks(record: dict) -> list[str]:
    """The messages of the checks whose evidence could not decide (each says why)."""
    return [v["message"] for v in record.get("verdicts", []) if v.get("status") == "inconclusive"]


def verdict_counts(results: dict) -> dict[str, int]:
    """Checks per outcome over a run: passed, failed, inconclusive, measured (no limit configured)."""
    counts = {"passed": 0, "failed": 0, "inconclusive": 0, "measured": 0}
    for record in results.values():
        for verdict in record.get("verdicts", []):
            status = verdict_status(verdict)
            counts[status] = counts.get(status, 0) + 1
    return counts


def largest_batch_throughput(record: dict) -> tuple[int, float] | tuple[None, None]:
    """The one throughput the reports show and ``min_throughput`` gates: at the largest batch measured."""
    timing = record.get("timing", {})
    if not timing:
        return None, None
    batch = max(timing)
    return batch, timing[batch]["throughput_per_s"]


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


def comparison_of(sketch) -> dict:
    """The run's cross-model comparison, computed once the results are complete; every report reads this one."""
    if sketch.comparison_analysis is None:
        dataset = sketch.loaded_dataset
        sketch.comparison_analysis = comparison(sketch.results, None if dataset is None else dataset.labels)
    return sketch.comparison_analysis


def comparison(results: dict, labels: np.ndarray | None = None) -> dict:
    """Best accuracy, fastest, most consistent — each naming every model not significantly different from
    the best (McNemar for accuracy, the interleaved ratio's interval for latency) — rankings, every pair's
    statements, the category × model accuracy table and the categories models disagree on."""
    accurate = {m: r["accuracy"]["accuracy"] for m, r in results.items() if r.get("accuracy")}
    batch1 = {m: t for m, t in ((m, batch1_timing(r)) for m, r in results.items()) if t}
    latency = {m: t["median_ms"] for m, t in batch1.items()}
    spread = {m: t["iqr_ms"] / t["median_ms"] for m, t in batch1.items() if t["median_ms"] > 0}
    pairs = model_pairs(results, labels)
    out = {
        "best_accuracy": _best(accurate, pairs, "accuracy"),
        "fastest": _best(latency, pairs, "latency", lowest=True),
        "most_consistent": winners(spread, lowest=True),
        "accuracy_ranking": sorted(accurate, key=lambda m: -accurate[m]),
        "latency_ranking": sorted(latency, key=lambda m: latency[m]),
        "pairs": pairs,
        "category_by_model": category_by_model(results),
        "category_variance": [],
    }
    with_categories = [r["accuracy"]["per_category"] for r in results.values() if r.get("accuracy")]
    if len(with_categories) > 1:
        names = list(with_categories[0])
        variance = {c: float(np.var([pc[c]["accuracy"] for pc in with_categories if c in pc])) for c in names}
        out["category_variance"] = [{"category": c, "variance": v}
                                    for c, v in sorted(variance.items(), key=lambda kv: -kv[1])[:5]]
    return out


def _best(values: dict[str, float], pairs: list[dict], kind: str, lowest: bool = False) -> str | None:
    """The best model by point estimate, joined by those the pairwise test cannot tell apart from it."""
    single = winners(values, lowest=lowest)
    if single is None or len(values) < 2:
        return single
    equal = single.removesuffix(" (tie)").split(" = ")
    tied = list(dict.fromkeys(equal + tied_with_best(equal[0], pairs, kind)))
    if len(tied) == len(equal):
        return single
    return " = ".join(tied) + " (no significant difference)"


def end_to_end_text(record: dict) -> str | None:
    """'end to end p50 0.61 ms: preprocess 21 %, runtime 70 %, postprocess 9 %; first call 35 ms (×78 warm)'."""
    e2e, cold = record.get("end_to_end"), record.get("cold_start")
    parts = []
    if e2e:
        stages = ", ".join(f"{stage} {row['share']:.0%}" for stage, row in e2e["stages"].items())
        parts.append(f"end to end p50 {e2e['median_ms']:.3f} ms at batch 1 ({stages})")
    if cold:
        warm = (record.get("timing", {}).get(1) or {}).get("median_ms")
        parts.append(f"first call after load {cold['first_call_ms']:.2f} ms"
                     + (f" (×{cold['first_call_ms'] / warm:.0f} the warm p50)" if warm else ""))
    return "; ".join(parts) or None


def batch_sweep_text(record: dict) -> str | None:
    sweep = record.get("batch_sweep")
    if not sweep or sweep.get("knee_batch") is None:
        return None
    if not sweep["reached"]:
        return f"throughput still gains ≥ {sweep['min_gain']:.0%} per step up to batch {sweep['knee_batch']}"
    return f"throughput knee at batch {sweep['knee_batch']} (larger batches gain < {sweep['min_gain']:.0%})"


def api_text(record: dict) -> str | None:
    """The figures an API model is gated on: success and invalid-answer rates, p95, cost per 1,000 drawings."""
    api = record.get("api")
    if not api:
        return None
    p95 = (record.get("timing", {}).get(1) or {}).get("p95_ms")
    per_1000 = cost_per_1000(api)
    return (f"API: success {api['success_rate']:.3f}, invalid answers {api['invalid_rate']:.3f}"
            + (f", p95 {p95:.0f} ms" if p95 is not None else "")
            + (f", ≈ ${per_1000:.4f} per 1,000 drawings" if per_1000 is not None else ""))


def served_text(record: dict) -> str | None:
    """A served model's request time split into server and network, one drawing per request where timed."""
    served = record.get("served")
    if not served or not served.get("by_batch"):
        return None
    size, split = min(served["by_batch"].items(), key=lambda item: int(item[0]))
    where = f"served by {served['url']} ({served['tensor_format']} tensors, {served['requests']:,} requests)"
    if split.get("server_p50_ms") is None:
        return f"{where}: client p50 {split['client_p50_ms']:.2f} ms per request of {size} (no server time reported)"
    return (f"{where}: p50 per request of {size}: client {split['client_p50_ms']:.2f} ms = server "
            f"{split['server_p50_ms']:.2f} ms + network {split['network_p50_ms']:.2f} ms")


def loadgen_texts(record: dict) -> list[str]:
    """One line per LoadGen run: scenario, load, its figure and LoadGen's verdict."""
    from pytest_sketchbench.loadgen import ScenarioResult

    return [ScenarioResult.from_dict(run).describe() for run in (record.get("loadgen") or {}).values()]


def parity_texts(record: dict) -> list[str]:
    lines = []
    for other, result in (record.get("parity") or {}).items():
        diff = result.get("max_probability_diff")
        lines.append(f"parity with {other}: agreement {result['agreement']:.4f} ({result['disagreements']:,} of "
                     f"{result['n_samples']:,} drawings differ)"
                     + (f", max |Δp| {diff:.2g}" if diff is not None else ""))
    return lines


def profile_text(record: dict) -> str | None:
    profile = record.get("profile")
    if not profile:
        return None
    top = ", ".join(f"{op['operator']} {op['share']:.0%}" for op in (profile.get("top_operators") or [])[:3])
    return (f"profile ({profile['calls']} calls): " + (f"top operators {top}; " if top else "")
            + ", ".join(f"{what} {profile[key]}" for key, what in (("trace", "trace"), ("flamegraph", "flame graph"))
                        if profile.get(key)))


def detail_lines(record: dict, verbose: bool = False) -> list[str]:
    """The per-model lines beside the summary row, shared by the terminal, the HTML and ``summary.md``."""
    lines = [category_mapping_text(record), end_to_end_text(record), api_text(record), served_text(record),
             *loadgen_texts(record), *parity_texts(record),
             profile_text(record)]
    if verbose:
        lines.append(batch_sweep_text(record))
    return [line for line in lines if line]
