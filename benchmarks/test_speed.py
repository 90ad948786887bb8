"""Relative speed gates that hold on any machine: each model timed in alternating rounds with a reference
(another model, or the built-in calibration workload) on the same batch, judged by the ratio of medians
and its 95 % interval — ``max_latency_ratio`` / ``min_throughput_ratio`` in ``thresholds.toml``.
"""


def test_relative_speed(sketch_relative_speed, sketch_thresholds):
    sketch_thresholds.check_ratios(sketch_relative_speed)


def test_side_by_side_with_other_models(sketch_pairwise):
    """Every pair of selected models timed interleaved: the comparison's latency statements come from here."""
    for result in sketch_pairwise:
        assert result["ci_low"] <= result["ratio"] <= result["ci_high"], result
