"""Regression gates against a saved baseline (``--sketch-baseline PATH``); skipped without one.

Accuracy uses McNemar's exact test on the paired per-drawing outcomes, latency a Mann–Whitney U
test on the raw samples; memory and size use margins. Improvements are reported, never failed.
"""


def test_accuracy_vs_baseline(sketch_predictions, sketch_baseline):
    sketch_baseline.check_accuracy(sketch_predictions)


def test_latency_vs_baseline(sketch_latency, sketch_session, sketch_model, sketch_baseline):
    sketch_latency(1)
    samples = sketch_session.record(sketch_model.name)["timing"]["1"]["samples_s"]
    sketch_baseline.check_latency(1, samples, sketch_session.hardware)


def test_memory_vs_baseline(sketch_memory, sketch_baseline):
    sketch_baseline.check_memory(sketch_memory)


def test_size_vs_baseline(sketch_model, sketch_baseline):
    sketch_baseline.check_size(sketch_model.describe().as_dict())
