"""Latency gates: p50/p95 of single drawings, and the latency profile across batch sizes.

Timing goes through pytest-benchmark (``benchmark.pedantic``, warm-up rounds, preprocessing
outside the timed call) and falls back to sketchbench's own timer where pytest-benchmark is
off, e.g. under ``pytest -n``.
"""


def test_single_drawing_latency(sketch_latency, sketch_thresholds):
    sketch_thresholds.check_latency(sketch_latency(1))


def test_latency_by_batch_size(sketch_latency, sketch_batch_size):
    stats = sketch_latency(sketch_batch_size)
    assert stats.rounds >= 20 and stats.median_ms > 0


def test_end_to_end_latency(sketch_end_to_end, sketch_thresholds):
    """One drawing from uint8 bitmap to class: what a caller waits for, with each stage's share."""
    sketch_thresholds.check_end_to_end(sketch_end_to_end())


def test_cold_start(sketch_model, sketch_session, sketch_latency, sketch_thresholds):
    """The first call after loading, against the warm p50 (a ratio travels) or an absolute limit."""
    warm = sketch_latency(1)
    sketch_thresholds.check_cold_start(sketch_session.record(sketch_model.name).cold_start, warm)
