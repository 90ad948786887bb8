"""Judging against a baseline: a saved run's figures (``--sketch-baseline``) and the base branch's model files
timed in this run (``--sketch-baseline-models``). Regressions fail; improvements are reported, never failed."""

from __future__ import annotations

import pytest

from pytest_sketchbench.checks import apply_inconclusive_policy, ratio_evidence, status_of
from pytest_sketchbench.results import BaselineRow, Memory, ModelResult, Verdict
from pytest_sketchbench.stats import percent


class BaselineGate:
    """Bound to one model and the baseline; records a comparison row per check and fails on a gated regression."""

    def __init__(self, comparison, record: ModelResult, test_id: str):
        self.comparison = comparison
        self.record = record
        self.test_id = test_id
        self.gate = set(comparison.settings["gate"])

    def _conclude(self, row: BaselineRow | None, gate_name: str, what: str) -> None:
        if row is None:
            pytest.skip(f"{self.comparison.model}: the baseline has no {what}")
        row.test = self.test_id
        self.record.baseline_rows.append(row)
        if row.verdict == "regression" and gate_name in self.gate:
            baseline, current, change, p_value = row.cells()
            p_value = f", p = {p_value}" if p_value else ""
            categories = (f"; significant per-category changes: {row.categories_text()}"
                          if row.significant_categories else "")
            pytest.fail(f"{self.comparison.model} {row.metric} regressed: {baseline} → {current} "
                        f"({change}{p_value}) against baseline {self.comparison.path}{categories}", pytrace=False)

    def check_accuracy(self, predictions) -> None:
        row = self.comparison.accuracy_row(predictions.labels, predictions.predicted, predictions.categories)
        self._conclude(row, "accuracy", "accuracy for this model")

    def check_latency(self, batch_size: int, samples_s: list[float], hardware: dict) -> None:
        reason = self.comparison.hardware_differs(hardware)
        if reason:
            pytest.skip(f"baseline latency was measured on other hardware ({reason}): not compared "
                        "(set compare_across_profiles = true in [baseline] to force)")
        self._conclude(self.comparison.latency(batch_size, samples_s), "latency", f"batch {batch_size} latency")

    def check_memory(self, memory: Memory) -> None:
        row, not_compared = self.comparison.memory_row(memory, self.record.memory_context)
        if not_compared:
            pytest.skip(not_compared)
        self._conclude(row, "memory", "memory figure")

    def check_size(self, info: dict) -> None:
        self._conclude(self.comparison.size_row(info.get("file_size_bytes")), "size", "model size")


RELATION = {"regression": ">", "inconclusive": "≈"}


def check_ab_latency(model: str, result: dict, max_ratio: float, record: ModelResult, test_id: str,
                     inconclusive: str = "skip") -> None:
    """The candidate timed interleaved with the baseline's file of the same model (``--sketch-baseline-models``),
    sequentially against ``max_ratio``: a regression when the whole interval lies above it, inconclusive
    when the budget ran out with ``max_ratio`` inside it."""
    low, high = result["ci_low"], result["ci_high"]
    noisy_wall_clock = result.get("clock") == "wall" and result.get("host_unfit")  # same model: CPU time holds
    verdict = "improvement" if high < 1 / max_ratio else \
        "inconclusive" if low <= max_ratio < high or (low > max_ratio and noisy_wall_clock) else \
        "regression" if low > max_ratio else \
        "no significant change" if low <= 1 <= high else "significant, within tolerance"
    row = BaselineRow(model, f"p50 latency @{result['batch_size']} (ms), same run", "same-run latency",
                      result["reference_p50_ms"], result["model_p50_ms"], result["ratio"], verdict,
                      p_test=f"sequential paired bootstrap ({ratio_evidence(result, model, 'baseline file')})",
                      ci=(low, high), confidence=result.get("confidence", 0.95), test=test_id)
    record.baseline_rows.append(row)
    message = (f"{model} {result.get('statistic', 'p50')} ratio to its baseline file {result['ratio']:.3g}× "
               f"({percent(result.get('confidence', 0.95))} CI {low:.3g}–{high:.3g}) "
               f"{RELATION.get(verdict, '<=')} max {max_ratio:g} at batch {result['batch_size']} "
               f"({ratio_evidence(result, model, 'baseline file')})")
    passed = {"regression": False, "inconclusive": None}.get(verdict, True)
    if passed is None:
        message = f"inconclusive: {message} — " + (f"not judged on this host: {'; '.join(result['host_unfit'])}"
                                                    if noisy_wall_clock else "still straddles the limit")
    record.verdicts.append(Verdict(test=test_id, check="ab_latency_max_ratio", measured=result["ratio"],
                                   limit=max_ratio, passed=passed, status=status_of(passed, passed is None),
                                   message=message))
    if passed is False:
        pytest.fail(message, pytrace=False)
    if passed is None:
        apply_inconclusive_policy(message, inconclusive)


__all__ = ["BaselineGate", "check_ab_latency"]
