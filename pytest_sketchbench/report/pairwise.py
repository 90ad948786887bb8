"""Every pair of models, compared the way a reviewer would: is the accuracy difference real (McNemar's
exact test on the drawings only one of them gets right), is the latency difference real (the ratio of
medians timed side by side, with its interval; Mann–Whitney U where they were timed apart).

Pure functions over result records and the test set's labels; the comparison is computed once per run
(:meth:`SketchSession.comparison`) and every report reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_sketchbench.results import CategoryTable, ModelResult
from pytest_sketchbench.stats import holm, mcnemar_exact, median_ratio_test, percent

ALPHA = 0.05  # the significance level of every pairwise statement


def scored_on_same_drawings(results: dict[str, ModelResult], labels: np.ndarray | None) -> list[str]:
    """Models whose per-drawing answers cover the whole test set (so any two of them can be paired)."""
    if labels is None:
        return []
    return [m for m, r in results.items() if r.accuracy and not r.categories_left_out
            and len(r.predicted or ()) == len(labels)]


def accuracy_pair(a: str, b: str, results: dict[str, ModelResult], labels: np.ndarray) -> dict[str, Any]:
    """McNemar's exact test between two models on the same drawings (its raw p; the statement is written once
    the run's pairs are corrected together, :func:`correct_accuracy_pairs`)."""
    correct_a = np.asarray(results[a].predicted) == labels
    correct_b = np.asarray(results[b].predicted) == labels
    test = mcnemar_exact(correct_a, correct_b)
    return {"accuracy_a": float(correct_a.mean()), "accuracy_b": float(correct_b.mean()),
            "only_a_correct": test["lost"], "only_b_correct": test["gained"], "mcnemar_p": test["p_value"]}


def correct_accuracy_pairs(rows: list[dict[str, Any]]) -> None:
    """Holm's correction over the run's pairwise McNemar tests (k models make k(k−1)/2 tests: uncorrected, some
    'differences' among equals are chance); significance and the sentences read the adjusted p."""
    tested = [row for row in rows if "mcnemar_p" in row]
    for row, adjusted in zip(tested, holm([row["mcnemar_p"] for row in tested]), strict=True):
        a, b, acc_a, acc_b = row["a"], row["b"], row["accuracy_a"], row["accuracy_b"]
        shown = f"p = {adjusted:.2g}" + (f", Holm-adjusted over {len(tested)} pairs" if len(tested) > 1 else "")
        if adjusted >= ALPHA:
            text = f"{a} and {b}: no significant accuracy difference ({shown})"
        else:
            better, worse = (a, b) if acc_a > acc_b else (b, a)
            text = f"{better} more accurate than {worse} by {abs(acc_a - acc_b):.3f} ({shown})"
        row.update(mcnemar_p_holm=adjusted, correction="holm" if len(tested) > 1 else None,
                   accuracy_significant=adjusted < ALPHA, accuracy_text=text)


def latency_pair(a: str, b: str, results: dict[str, ModelResult]) -> dict[str, Any] | None:
    """a's batch-1 latency ÷ b's: interleaved in this run where it was (either direction), else the
    separately timed samples with a two-sided Mann–Whitney U; None when neither exists."""
    if _machine(results[a]) != _machine(results[b]):  # merged runs: times from two machines
        return None
    key_ab, key_ba = (b, 1), (a, 1)
    side_by_side = results[a].relative_speed.get(key_ab)
    if side_by_side is not None:
        ratio, low, high, rounds = (side_by_side["ratio"], side_by_side["ci_low"], side_by_side["ci_high"],
                                    side_by_side["rounds"])
        confidence = side_by_side.get("confidence", 0.95)
    elif (reverse := results[b].relative_speed.get(key_ba)) is not None:
        ratio, low, high, rounds = 1 / reverse["ratio"], 1 / reverse["ci_high"], 1 / reverse["ci_low"], \
            reverse["rounds"]
        confidence = reverse.get("confidence", 0.95)
    else:
        samples_a = results[a].timing[1].samples_s if 1 in results[a].timing else None
        samples_b = results[b].timing[1].samples_s if 1 in results[b].timing else None
        if not samples_a or not samples_b:
            return None
        test = median_ratio_test(samples_a, samples_b)
        ratio, p = test["ratio"], test["p_value"]
        return {"ratio": ratio, "ci": None, "method": "mann-whitney", "p_value": p, "significant": p < ALPHA,
                "text": _latency_text(a, b, ratio, None, p >= ALPHA, f"timed apart: Mann–Whitney U p = {p:.2g}")}
    same = low <= 1 <= high
    return {"ratio": ratio, "ci": [low, high], "method": "interleaved", "p_value": None, "significant": not same,
            "text": _latency_text(a, b, ratio, (low, high), same, f"{rounds:,} interleaved rounds", confidence)}


def _latency_text(a: str, b: str, ratio: float, interval: tuple[float, float] | None, same: bool, how: str,
                  confidence: float = 0.95) -> str:
    """The sentence, with the factor and its interval as 'slower' reads them (always ≥ 1)."""
    if ratio < 1 and not same:
        a, b, ratio = b, a, 1 / ratio
        interval = None if interval is None else (1 / interval[1], 1 / interval[0])
    shown = f"{percent(confidence)} CI {interval[0]:.3g}–{interval[1]:.3g}, " if interval else ""
    if same:
        return f"{a} and {b}: no significant latency difference (×{ratio:.3g}; {shown}{how})"
    return f"{a} {ratio:.3g}× slower than {b} at batch 1 ({shown}{how})"


def _machine(record: ModelResult) -> str | None:
    return record.merged_from.machine if record.merged_from else None


def model_pairs(results: dict[str, ModelResult], labels: np.ndarray | None) -> list[dict[str, Any]]:
    """Every pair of models with an accuracy or a latency statement (accuracy only on the same drawings)."""
    names, paired = list(results), set(scored_on_same_drawings(results, labels))
    rows = []
    for index, a in enumerate(names):
        for b in names[index + 1:]:
            row: dict[str, Any] = {"a": a, "b": b}
            if a in paired and b in paired and labels is not None:
                row.update(accuracy_pair(a, b, results, labels))
            latency = latency_pair(a, b, results)
            if latency is not None:
                row["latency"] = latency
            if len(row) > 2:
                rows.append(row)
    correct_accuracy_pairs(rows)
    return rows


def pair_statements(pair: dict[str, Any]) -> list[str]:
    """The accuracy and latency sentences of one pair, as the terminal and ``summary.md`` print them."""
    return [text for text in (pair.get("accuracy_text"), (pair.get("latency") or {}).get("text")) if text]


def tied_with_best(best: str, pairs: list[dict[str, Any]], significant_key: str) -> list[str]:
    """``best`` and every model not significantly different from it."""
    tied = [best]
    for row in pairs:
        if best in (row["a"], row["b"]):
            value = row.get("latency", {}).get("significant") if significant_key == "latency" \
                else row.get("accuracy_significant")
            if value is False:
                tied.append(row["b"] if row["a"] == best else row["a"])
    return tied


def category_by_model(results: dict[str, ModelResult]) -> CategoryTable:
    """Accuracy of every category (rows) for every model (columns): where models differ."""
    accuracies = {m: r.accuracy for m, r in results.items() if r.accuracy}
    if not accuracies:
        return CategoryTable()
    categories = list(next(iter(accuracies.values())).per_category)
    table = [[a.per_category[c].accuracy if c in a.per_category else None for a in accuracies.values()]
             for c in categories]
    return CategoryTable(categories, list(accuracies), table)
