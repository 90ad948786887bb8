"""Regression gates against a saved baseline (``--sketch-baseline PATH``); skipped without one.

Accuracy uses McNemar's exact test on the paired per-drawing outcomes; latency, with
``--sketch-baseline-models DIR``, the baseline's model file timed interleaved with the candidate in this
run (a ratio with its interval: holds on any machine), else a Mann–Whitney U test on the recorded samples
(same hardware only); memory and size use margins. Improvements are reported, never failed.
"""


def test_accuracy_vs_baseline(sketch_predictions, sketch_baseline):
    sketch_baseline.check_accuracy(sketch_predictions)


def test_latency_vs_baseline(sketch_baseline_latency):
    sketch_baseline_latency(1)


def test_memory_vs_baseline(sketch_memory, sketch_baseline):
    sketch_baseline.check_memory(sketch_memory)


def test_size_vs_baseline(sketch_model, sketch_baseline):
    sketch_baseline.check_size(sketch_model.describe().as_dict())
