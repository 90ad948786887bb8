"""Write the calibration workload as a TF.js graph model (``pytest_sketchbench/calibration/tfjs/``): the same
network and weights as ``calibration.onnx``, so that a browser model is timed beside the same yardstick in its
own runtime (TF.js in the page), as the Python models are beside the ONNX one.

    python scripts/build_calibration_tfjs.py     # needs TensorFlow (the keras extra) and onnxruntime

It checks the export against ``calibration.onnx`` on random drawings and prints the largest difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

REPO = Path(__file__).resolve().parent.parent
ONNX_FILE = REPO / "pytest_sketchbench" / "calibration" / "calibration.onnx"
OUT = REPO / "pytest_sketchbench" / "calibration" / "tfjs"


def keras_twin():
    """The ONNX graph (NHWC input → conv 32 → relu → max-pool 2 → conv 64 → relu → mean → dense 22) in Keras."""
    import keras

    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(ONNX_FILE).graph.initializer}
    image = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c1")(image)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="g")(x)
    logits = keras.layers.Dense(22, name="y")(x)
    model = keras.Model(image, logits)
    model.get_layer("c1").set_weights([weights["w1"].transpose(2, 3, 1, 0), weights["b1"]])  # OIHW → HWIO
    model.get_layer("c2").set_weights([weights["w2"].transpose(2, 3, 1, 0), weights["b2"]])
    model.get_layer("y").set_weights([weights["w3"], weights["b3"]])
    return model


def main() -> None:
    import onnxruntime as ort

    from pytest_sketchbench.models.tfjs_format import freeze_keras, write_graph_model

    model = keras_twin()
    drawings = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    expected = ort.InferenceSession(str(ONNX_FILE)).run(None, {"x": drawings})[0]
    got = np.asarray(model(drawings, training=False))
    graph_def, inputs, outputs = freeze_keras(model)
    path = write_graph_model(graph_def, OUT, inputs, outputs,
                             metadata={"purpose": "the calibration workload (never scored): calibration.onnx's "
                                                  "network and weights, for timing beside TF.js models"})
    print(f"wrote {path}; largest |difference| from calibration.onnx: {np.abs(got - expected).max():.2e}")


if __name__ == "__main__":
    main()
