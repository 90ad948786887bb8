"""Resource gates: memory growth over load + inference, device memory on GPUs, model file size, load time."""

import pytest


def test_memory(sketch_memory, sketch_thresholds):
    sketch_thresholds.check_memory(sketch_memory)


def test_model_size(sketch_model, sketch_thresholds):
    sketch_thresholds.check_model_size(sketch_model.describe().as_dict())


def test_load_time(sketch_model, sketch_session, sketch_thresholds):
    index = sketch_session.speed_index() if sketch_thresholds.limits.get("max_load_ratio") else None
    sketch_thresholds.check_load_time(sketch_session.record(sketch_model.name).load_s,
                                      (index or {}).get("p50_ms", 0) / 1000 or None)


@pytest.mark.requires_gpu
def test_gpu_memory(sketch_memory, sketch_model, sketch_session, sketch_thresholds):
    sketch_thresholds.check_gpu_memory(sketch_session.record(sketch_model.name))
