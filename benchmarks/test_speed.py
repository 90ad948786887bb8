"""Relative speed gates that hold on any machine: each model timed in alternating rounds with a reference
(another model, or the built-in calibration workload) on the same batch, judged by the ratio of medians
and its 95 % interval — ``max_latency_ratio`` / ``min_throughput_ratio`` in ``thresholds.toml``.
"""


def test_relative_speed(sketch_relative_speed, sketch_thresholds):
    sketch_thresholds.check_ratios(sketch_relative_speed)
