"""Train the ``mobilenet`` model (MobileNetV2, from scratch, RGB) and export it as a TF.js graph model.

    python models/train_mobilenet.py [--epochs 20] [--size 64]   # resumes from models/.work/

Writes ``models/mobilenet/model.json`` + ``group1-shard*of*.bin`` with the category list and
input size in ``userDefinedMetadata``; the plugin reads the input size from the graph.
No ImageNet weights: they are not reachable here, so this is training from scratch.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from recipe_common import (  # noqa: E402
    MODELS_DIR,
    SEED,
    Log,
    as_float32,
    fit_resumable,
    limit_threads,
    load_split_arrays,
    mixed_bfloat16,
    training_datasets,
)

WORK = MODELS_DIR / ".work"


def build_mobilenet(size: int, n_classes: int, alpha: float) -> keras.Model:
    """MobileNetV2 (inverted residual, depthwise-separable blocks) on [0, 1] RGB, black ink on white."""
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)  # MobileNetV2 expects [-1, 1]
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                              weights=None, pooling="avg")
    for layer in backbone.layers:  # Keras' MobileNetV2 uses 0.999: too slow to settle when training from scratch
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.99
    x = backbone(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"mobilenetv2_{alpha}_{size}")


def to_canvas(gray28: tf.Tensor, size: int) -> tf.Tensor:
    """Same as pytest_sketchbench.preprocess.to_rgb: bilinear resize, black ink on white, 3 channels."""
    resized = tf.image.resize(gray28, (size, size), method="bilinear")
    return tf.repeat(1.0 - tf.clip_by_value(resized, 0.0, 1.0), 3, axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0, help="train on this many drawings (smoke test)")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    parser.add_argument("--out", default=str(MODELS_DIR / "mobilenet"))
    parser.add_argument("--bf16", action="store_true", help="train in mixed bfloat16; exports float32")
    args = parser.parse_args()
    limit_threads(args.threads)
    mixed_bfloat16(args.bf16)

    keras.utils.set_random_seed(SEED)
    WORK.mkdir(exist_ok=True)
    log = Log(WORK / "train_mobilenet.log")
    data = load_split_arrays()
    categories = data["categories"]
    (x_train, y_train), (x_val, y_val) = data["train"], data["validation"]
    if args.limit:
        pick = np.random.default_rng(SEED).permutation(len(x_train))[: args.limit]
        x_train, y_train = x_train[pick], y_train[pick]
    log(f"train {x_train.shape}, validation {x_val.shape}, size {args.size}, alpha {args.alpha}")

    size = args.size
    train_ds, val_ds = training_datasets(x_train, y_train, x_val, y_val, len(categories), args.batch_size,
                                         to_input=lambda x: to_canvas(x, size))

    tag = "smoke" if args.limit else "ckpt"
    variant = ("" if args.alpha == 0.5 else f"_a{args.alpha:g}") + ("_bf16" if args.bf16 else "")
    checkpoint = WORK / f"mobilenet{variant}_{tag}.keras"
    build = lambda: build_mobilenet(size, len(categories), args.alpha)  # noqa: E731
    model = as_float32(fit_resumable(build, 3e-3, args, train_ds, val_ds, len(y_train), checkpoint, log), build)

    x_test, y_test = data["test"]
    test_ds = tf.data.Dataset.from_tensor_slices(x_test).batch(256).map(lambda x: to_canvas(x, size))
    keras_labels = np.argmax(model.predict(test_ds, verbose=0), 1)
    log(f"test accuracy (Keras, before export) {float(np.mean(keras_labels == y_test)):.4f}")

    from pytest_sketchbench.models.tfjs_format import freeze_keras, write_graph_model

    graph_def, inputs, outputs = freeze_keras(model)
    out = write_graph_model(graph_def, args.out, inputs, outputs,
                            metadata={"categories": categories, "input_size": [size, size],
                                      "input_format": "rgb: [0,1], black ink on white",
                                      "architecture": f"MobileNetV2 alpha={args.alpha}, from scratch"})
    log(f"wrote {out}")
    from pytest_sketchbench.models.tfjs_model import TfjsGraphModel

    exported = TfjsGraphModel("mobilenet", {"path": str(out)})  # read back as the plugin reads it
    exported.import_runtime()
    exported.load()
    tfjs_labels = np.concatenate([exported.predict((x_test[i:i + 256, ..., 0] * 255).round().astype(np.uint8))
                                  .argmax(1) for i in range(0, len(x_test), 256)])
    log(f"agreement of the TF.js export with the Keras model on the test split: "
        f"{float(np.mean(tfjs_labels == keras_labels)):.4f}")


if __name__ == "__main__":
    main()
