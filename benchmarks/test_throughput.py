"""Throughput gate: drawings per second at the largest configured batch size."""


def test_throughput(sketch_latency, sketch_session, sketch_thresholds):
    largest = max(sketch_session.options.batch_sizes)
    sketch_thresholds.check_throughput(sketch_latency(largest))
