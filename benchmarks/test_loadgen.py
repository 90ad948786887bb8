"""Load scenarios (MLPerf LoadGen): latency under a target load, the highest valid rate, offline throughput.

Each runs only where ``[<model>.loadgen]`` in the config names its gate (``single_stream_max_p90_ms``,
``multi_stream_max_p99_ms``, ``server_target_qps`` + ``server_max_p99_ms``, ``min_server_peak_qps``,
``min_offline_qps``, ``soak_s``, ``load_steps_qps`` or ``ramp_qps``); LoadGen's accuracy mode then runs the same
SUT over every drawing.
"""

import pytest


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "ServerPeak", "Offline", "Soak",
                                      "Steps"])
def test_loadgen_scenario(scenario, sketch_loadgen, sketch_thresholds):
    sketch_thresholds.check_loadgen(sketch_loadgen(scenario))


def test_loadgen_accuracy_mode(sketch_loadgen, sketch_predictions, sketch_thresholds):
    """LoadGen's answers, drawing by drawing, must be the accuracy pass's: the SUT measured is the model scored."""
    sketch_thresholds.check_loadgen(sketch_loadgen("Accuracy"), sketch_predictions.report.accuracy)
