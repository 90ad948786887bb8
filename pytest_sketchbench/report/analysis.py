"""Cross-model comparison over results (pure functions over :class:`~pytest_sketchbench.results.ModelResult`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_sketchbench.input_probe import diagnosis_text
from pytest_sketchbench.metrics import cost_per_1000
from pytest_sketchbench.report.pairwise import category_by_model, model_pairs, tied_with_best
from pytest_sketchbench.results import Accuracy, ModelResult
from pytest_sketchbench.stats import percent


def extreme_categories(accuracy: Accuracy, n: int = 3) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The n best and n worst categories by accuracy."""
    ranked = sorted(((c, row.accuracy) for c, row in accuracy.per_category.items()), key=lambda x: -x[1])
    return ranked[:n], ranked[::-1][:n]


def fmt(value: Any, spec: str = ".3f", missing: str = "—") -> str:
    """A figure for a report cell; ``missing`` where nothing was measured."""
    return missing if value is None else format(value, spec)


def speed_index_text(index: dict[str, Any] | None, baseline: dict[str, Any] | None = None) -> str:
    """'; machine speed index 10,900 calibration calls/s' (and the baseline's, with the ratio)."""
    if not index or not index.get("calls_per_s"):
        return ""
    text = f"; machine speed index {index['calls_per_s']:,.0f} calibration calls/s"
    if baseline and baseline.get("calls_per_s"):
        text += (f" (baseline's machine: {baseline['calls_per_s']:,.0f}/s, this one ×"
                 f"{index['calls_per_s'] / baseline['calls_per_s']:.2f})")
    return text


def category_mapping_text(record: ModelResult) -> str | None:
    """'categories matched by name, closed-set …; open-set acc 0.871, 3.2 % of answers outside …'."""
    mapping = record.category_mapping
    if not mapping:
        return None
    open_set = record.accuracy.open_set if record.accuracy else None
    return f"categories matched {mapping}" + (
        f"; open-set acc {open_set['accuracy']:.3f}{' (the gated figure)' if open_set.get('gated') else ''}, "
        f"{open_set['outside_rate']:.1%} of answers outside the dataset's categories" if open_set else "")


def calibration_text(record: ModelResult) -> str | None:
    """'calibration: ECE 0.021 (95% CI 0.016–0.027, 15 equal-width bins …), NLL 0.331, Brier 0.139, …'."""
    accuracy = record.accuracy
    figures = accuracy.calibration if accuracy else None
    if accuracy is None or figures is None:
        return None
    return (f"calibration: ECE {figures.ece:.3f} (95% CI {figures.ece_ci95[0]:.3f}–{figures.ece_ci95[1]:.3f}; "
            f"{figures.binning}), NLL {figures.nll:.3f}, Brier {figures.brier:.3f}, mean confidence "
            f"{figures.mean_confidence:.3f} vs accuracy {accuracy.accuracy:.3f}")


def near_chance_text(record: ModelResult) -> str | None:
    """'accuracy 0.099 ≈ chance (1/11): no ink polarity or value range helped …': the input probe's finding,
    shown for every model that scored near chance, gated or only measured."""
    if record.input_diagnosis is None or record.accuracy is None:
        return None
    return f"accuracy {record.accuracy.accuracy:.3f}{diagnosis_text(record.model, record.input_diagnosis)}"


def rebuilt_text(record: ModelResult) -> str | None:
    """'a Keras 2.2.4-tf config, rebuilt with tf-keras 2.21.0': which Keras read a layers model, when it says."""
    extra = (record.model_info or {}).get("extra") or {}
    if not str(extra.get("rebuilt_with", "")).startswith("tf-keras") or not extra.get("keras_version"):
        return None
    return f"a Keras {extra['keras_version']} config, rebuilt with {extra['rebuilt_with']}"


def model_status(record: ModelResult) -> str:
    """One word for a model's outcome, from its tests and checks: error > failed > inconclusive > passed >
    measured > skipped > not run. A model with any check its evidence could not decide is never "passed"; one whose
    checks all lacked a limit is "measured" (not gated), never "passed"."""
    outcomes = record.outcomes
    if record.errors or outcomes.get("error"):
        return "error"
    if outcomes.get("failed") or record.failed_checks():
        return "failed"
    if record.inconclusive_checks():
        return "inconclusive"
    if outcomes.get("passed"):
        judged = [v.outcome for v in record.verdicts]
        return "measured" if judged and "passed" not in judged else "passed"
    if outcomes.get("skipped") or record.skipped:
        return "skipped"
    return "not run"


STATUS_MARK = {"passed": "✅", "failed": "❌", "error": "💥", "inconclusive": "❔", "measured": "📏", "skipped": "⏭️",
               "not run": "—"}
STATUSES = tuple(STATUS_MARK)


def inconclusive_checks(record: ModelResult) -> list[str]:
    """The messages of the checks whose evidence could not decide (each says why)."""
    return [v.message for v in record.inconclusive_checks()]


def verdict_counts(results: dict[str, ModelResult]) -> dict[str, int]:
    """Checks per outcome over a run: passed, failed, inconclusive, measured (no limit configured)."""
    counts = {"passed": 0, "failed": 0, "inconclusive": 0, "measured": 0}
    for record in results.values():
        for verdict in record.verdicts:
            counts[verdict.outcome] = counts.get(verdict.outcome, 0) + 1
    return counts


def largest_batch_throughput(record: ModelResult) -> tuple[int, float] | tuple[None, None]:
    """The one throughput the reports show and ``min_throughput`` gates: at the largest batch measured."""
    if not record.timing:
        return None, None
    batch = max(record.timing)
    return batch, record.timing[batch].throughput_per_s


def failed_check_details(record: ModelResult) -> list[str]:
    """Each failed check as 'what: measured vs limit' — its verdict message says both."""
    return [v.message for v in record.failed_checks()]


def winners(values: dict[str, float], lowest: bool = False, digits: int = 9) -> str | None:
    """The best model, or every model tied for best ("a = b (tie)") — never one crowned among equals."""
    if not values:
        return None
    rounded = {m: round(v, digits) for m, v in values.items()}
    best = (min if lowest else max)(rounded.values())
    tied = [m for m, v in rounded.items() if v == best]
    return tied[0] if len(tied) == 1 else " = ".join(tied) + " (tie)"


def comparison_of(sketch: Any) -> dict[str, Any]:
    """The run's cross-model comparison, computed once the results are complete; every report reads this one."""
    if sketch.comparison_analysis is None:
        dataset = sketch.loaded_dataset
        sketch.comparison_analysis = comparison(sketch.results, None if dataset is None else dataset.labels)
    analysis: dict[str, Any] = sketch.comparison_analysis
    return analysis


def comparison(results: dict[str, ModelResult], labels: np.ndarray | None = None) -> dict[str, Any]:
    """Best accuracy, fastest, most consistent — each naming every model not significantly different from
    the best (McNemar for accuracy, the interleaved ratio's interval for latency) — rankings, every pair's
    statements, the category × model accuracy table and the categories models disagree on."""
    accurate = {m: r.accuracy.accuracy for m, r in results.items() if r.accuracy}
    batch1 = {m: t for m, t in ((m, r.batch1()) for m, r in results.items()) if t}
    latency = {m: t.median_ms for m, t in batch1.items()}
    spread = {m: t.iqr_ms / t.median_ms for m, t in batch1.items() if t.median_ms > 0}
    pairs = model_pairs(results, labels)
    several = len(results) > 1  # one model is not "the best" of anything
    out = {
        "best_accuracy": _best(accurate, pairs, "accuracy") if several else None,
        "fastest": _best(latency, pairs, "latency", lowest=True) if several else None,
        "most_consistent": winners(spread, lowest=True) if several else None,
        "accuracy_ranking": sorted(accurate, key=lambda m: -accurate[m]),
        "latency_ranking": sorted(latency, key=lambda m: latency[m]),
        "pairs": pairs,
        "category_by_model": category_by_model(results),
        "category_variance": [],
    }
    with_categories = [r.accuracy.per_category for r in results.values() if r.accuracy]
    if len(with_categories) > 1:
        names = list(with_categories[0])
        variance = {c: float(np.var([pc[c].accuracy for pc in with_categories if c in pc])) for c in names}
        out["category_variance"] = [{"category": c, "variance": v}
                                    for c, v in sorted(variance.items(), key=lambda kv: -kv[1])[:5]]
    return out


def _best(values: dict[str, float], pairs: list[dict[str, Any]], kind: str, lowest: bool = False) -> str | None:
    """The best model by point estimate, joined by those the pairwise test cannot tell apart from it."""
    single = winners(values, lowest=lowest)
    if single is None or len(values) < 2:
        return single
    equal = single.removesuffix(" (tie)").split(" = ")
    tied = list(dict.fromkeys(equal + tied_with_best(equal[0], pairs, kind)))
    if len(tied) == len(equal):
        return single
    return " = ".join(tied) + " (no significant difference)"


def end_to_end_text(record: ModelResult) -> str | None:
    """'end to end p50 0.61 ms: preprocess 21 %, runtime 70 %, postprocess 9 %; first call 35 ms (×78 warm)'."""
    e2e, cold = record.end_to_end, record.cold_start
    parts = []
    if e2e:
        stages = ", ".join(f"{stage} {row['share']:.0%}" for stage, row in e2e["stages"].items())
        parts.append(f"end to end p50 {e2e['median_ms']:.3f} ms at batch 1 ({stages})")
    if cold:
        warm = record.timing[1].median_ms if 1 in record.timing else None
        parts.append(f"first call after load {cold['first_call_ms']:.2f} ms"
                     + (f" (×{cold['first_call_ms'] / warm:.0f} the warm p50)" if warm else ""))
    return "; ".join(parts) or None


def batch_sweep_text(record: ModelResult) -> str | None:
    sweep = record.batch_sweep
    if not sweep or sweep.get("knee_batch") is None:
        return None
    if not sweep["reached"]:
        return f"throughput still gains ≥ {sweep['min_gain']:.0%} per step up to batch {sweep['knee_batch']}"
    return f"throughput knee at batch {sweep['knee_batch']} (larger batches gain < {sweep['min_gain']:.0%})"


def api_text(record: ModelResult) -> str | None:
    """The figures an API model is gated on: success and invalid-answer rates, p95, cost per 1,000 drawings."""
    api = record.extras.get("api")
    if not api:
        return None
    p95 = record.timing[1].p95_ms if 1 in record.timing else None
    per_1000 = cost_per_1000(api)
    return (f"API: success {api['success_rate']:.3f}, invalid answers {api['invalid_rate']:.3f}"
            + (f", p95 {p95:.0f} ms" if p95 is not None else "")
            + (f", ≈ ${per_1000:.4f} per 1,000 drawings" if per_1000 is not None else ""))


def browser_text(record: ModelResult) -> str | None:
    """A TF.js model in Chromium: backend, renderer, the page-to-ready split, and the in-page time per call."""
    browser = record.extras.get("browser")
    if not browser:
        return None
    load = browser.get("load_ms") or {}
    ready = sum(v for v in (load.get("backend_init_ms"), load.get("download_parse_ms")) if v is not None)
    text = (f"TF.js {browser.get('tfjs')} {browser['backend']} in {browser['browser']} (renderer "
            f"{browser.get('renderer') or 'none'}): ready in {ready:.0f} ms = backend init "
            f"{load.get('backend_init_ms', 0):.0f} + download and parse {load.get('download_parse_ms', 0):.0f}; first "
            f"predict {load.get('first_predict_ms', 0):.0f} ms")
    in_page = browser.get("in_page") or {}
    if in_page:
        size, timed = min(in_page.items(), key=lambda item: int(item[0]))
        text += (f"; in-page p50 {_with_interval(timed, 'p50')}, p99 {_with_interval(timed, 'p99')} per call of "
                 f"{size} ({timed['calls']:,} calls)")
    if browser.get("chromium_memory_mb") is not None:
        tensors = browser.get("tensor_bytes")
        text += f"; Chromium's processes {browser['chromium_memory_mb']:.0f} MB" + (
            f" (TF.js tensors {tensors / 2**20:.1f} MB)" if tensors is not None else "")
    ratio = record.relative_speed.get(("calibration", 1))
    if ratio and ratio.get("timed_in"):
        text += (f"; {ratio['ratio']:.2f}× the calibration network in the same page ({percent(ratio['confidence'])} "
                 f"CI {ratio['ci_low']:.2f}–{ratio['ci_high']:.2f}, {ratio['rounds']:,} interleaved rounds)")
    return text


def _with_interval(timed: dict[str, Any], name: str) -> str:
    interval = timed.get(f"{name}_ci_ms")
    return f"{timed[f'{name}_ms']:.2f} ms" + (f" (95% CI {interval[0]:.2f}–{interval[1]:.2f})" if interval else "")


def served_text(record: ModelResult) -> str | None:
    """A served model's request time split into server and network, one drawing per request where timed."""
    served = record.extras.get("served")
    if not served or not served.get("by_batch"):
        return None
    size, split = min(served["by_batch"].items(), key=lambda item: int(item[0]))
    where = f"served by {served['url']} ({served['tensor_format']} tensors, {served['requests']:,} requests)"
    if split.get("server_p50_ms") is None:
        return f"{where}: client p50 {split['client_p50_ms']:.2f} ms per request of {size} (no server time reported)"
    return (f"{where}: p50 per request of {size}: client {split['client_p50_ms']:.2f} ms = server "
            f"{split['server_p50_ms']:.2f} ms + network {split['network_p50_ms']:.2f} ms")


def loadgen_texts(record: ModelResult) -> list[str]:
    """One line per LoadGen run: scenario, load, its figure and LoadGen's verdict; a soak adds its windows."""
    from pytest_sketchbench.load_shapes import step_table
    from pytest_sketchbench.loadgen import ScenarioResult
    from pytest_sketchbench.soak import describe_resources, window_table

    lines = []
    for run in (record.loadgen or {}).values():
        result = ScenarioResult.from_dict(run)
        lines.append(result.describe())
        resources = describe_resources(result.resources)
        if resources:
            lines.append(f"  {resources}")
        if result.soak:
            lines += [f"  {line}" for line in window_table(result.soak["windows"])]
        if result.steps:
            lines += [f"  {line}" for line in step_table(result.steps)]
    return lines


def parity_texts(record: ModelResult) -> list[str]:
    lines = []
    for other, result in record.parity.items():
        diff = result.max_probability_diff
        lines.append(f"parity with {other}: agreement {result.agreement:.4f} ({result.disagreements:,} of "
                     f"{result.n_samples:,} drawings differ)"
                     + (f", max |Δp| {diff:.2g}" if diff is not None else ""))
    return lines


def profile_text(record: ModelResult) -> str | None:
    profile = record.profile
    if not profile:
        return None
    top = ", ".join(f"{op['operator']} {op['share']:.0%}" for op in (profile.get("top_operators") or [])[:3])
    return (f"profile ({profile['calls']} calls): " + (f"top operators {top}; " if top else "")
            + ", ".join(f"{what} {profile[key]}" for key, what in (("trace", "trace"), ("flamegraph", "flame graph"))
                        if profile.get(key)))


def detail_lines(record: ModelResult, verbose: bool = False) -> list[str]:
    """The per-model lines beside the summary row, shared by the terminal, the HTML and ``summary.md``."""
    lines = [near_chance_text(record), rebuilt_text(record), category_mapping_text(record), calibration_text(record),
             end_to_end_text(record),
             api_text(record),
             served_text(record), browser_text(record),
             *loadgen_texts(record), *parity_texts(record),
             profile_text(record)]
    if verbose:
        lines.append(batch_sweep_text(record))
    return [line for line in lines if line]
