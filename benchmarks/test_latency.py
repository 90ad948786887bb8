"""Latency gates: p50/p95 of single drawings, and the latency profile across batch sizes.

Timing goes through pytest-benchmark (``benchmark.pedantic``, warm-up rounds, preprocessing
outside the timed call) and falls back to sketchbench's own timer where pytest-benchmark is
off, e.g. under ``pytest -n``.
"""


def test_single_drawing_latency(sketch_latency, sketch_thresholds):
    sketch_thresholds.check_latency(sketch_latency(1))


def test_latency_by_batch_size(sketch_latency, sketch_batch_size):
    stats = sketch_latency(sketch_batch_size)
    assert stats["rounds"] >= 20 and stats["median_ms"] > 0
