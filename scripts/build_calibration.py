"""Write the calibration workload shipped with the plugin: ``pytest_sketchbench/calibration/calibration.onnx``.

A small fixed convolutional network on one 28×28 drawing (two 3×3 convolutions, pooling, a dense
layer; ~20 k weights drawn from a fixed seed, ~4 M multiply-adds). It is never scored: it is a
yardstick. Timed side by side with a model it turns an absolute latency into a ratio that travels
between machines, and its own calls per second are the "machine speed index" printed in every report.

    python scripts/build_calibration.py          # needs the `onnx` package (dev extra)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "pytest_sketchbench" / "calibration" / "calibration.onnx"
SEED = 20261123


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)

    def weights(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    initializers = [weights("w1", 32, 1, 3, 3), weights("b1", 32), weights("w2", 64, 32, 3, 3), weights("b2", 64),
                    weights("w3", 64, 22), weights("b3", 22)]
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "sketchbench_calibration",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 28, 28, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 22])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="sketchbench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")
