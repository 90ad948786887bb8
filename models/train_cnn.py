"""Train the ``cnn`` model (Keras, 28×28 grayscale) and save ``models/cnn.h5``.

    python models/train_cnn.py [--epochs 30]      # resumes from models/.work/cnn_ckpt.keras

Then ``python models/export_cnn.py`` writes the ONNX, int8 ONNX and TorchScript copies.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
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
    write_classes,
)

WORK = MODELS_DIR / ".work"


def build_cnn(n_classes: int, width: float = 1.0, dropout: tuple[float, float] = (0.4, 0.3)) -> keras.Model:
    """Four convolutional blocks (conv-BN-ReLU), then a small dense head; ``width`` scales every layer."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for filters, convs, pool in ((32, 2, True), (64, 2, True), (128, 1, True), (192, 1, False)):
        for _ in range(convs):
            x = layers.Conv2D(round(filters * width), 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout[0])(x)
    x = layers.Dense(round(256 * width), activation="relu")(x)
    x = layers.Dropout(dropout[1])(x)
    # float32 even under a mixed-precision policy: a softmax in bfloat16 rounds the probabilities
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="sketch_cnn")


def _sample(rng: np.random.Generator, count: int, images: np.ndarray, labels: np.ndarray):
    pick = rng.permutation(len(images))[:count]
    return images[pick], labels[pick]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0,
                        help="train, validate and test on this many drawings each (smoke test)")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all cores)")
    parser.add_argument("--width", type=float, default=1.0, help="scale every layer's filters and units")
    parser.add_argument("--dropout", type=float, nargs=2, default=(0.4, 0.3), metavar=("FLATTEN", "DENSE"))
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="peak of the cosine schedule")
    parser.add_argument("--class-weight-power", type=float, default=0.5,
                        help="inverse-frequency class weights to this power (0.5: square root; 1: balanced)")
    parser.add_argument("--init", default="", help="start from this trained .h5 (a second cosine cycle)")
    parser.add_argument("--out", default=str(MODELS_DIR / "cnn.h5"))
    parser.add_argument("--bf16", action="store_true",
                        help="train in mixed bfloat16 (about 1.3x faster on AVX512_BF16 CPUs); saves float32")
    args = parser.parse_args()
    limit_threads(args.threads)
    mixed_bfloat16(args.bf16)

    keras.utils.set_random_seed(SEED)
    WORK.mkdir(exist_ok=True)
    log = Log(WORK / "train_cnn.log")
    data = load_split_arrays()
    categories = data["categories"]
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["validation"], data["test"]
    if args.limit:  # a smoke run: as many drawings to validate and test on (scoring 6,576 costs more than training)
        rng = np.random.default_rng(SEED)
        x_train, y_train = _sample(rng, args.limit, x_train, y_train)
        x_val, y_val = _sample(rng, args.limit, x_val, y_val)
        x_test, y_test = _sample(rng, args.limit, x_test, y_test)
    log(f"train {x_train.shape}, validation {x_val.shape}, {len(categories)} categories")

    train_ds, val_ds = training_datasets(x_train, y_train, x_val, y_val, len(categories), args.batch_size,
                                         weight_power=args.class_weight_power)
    tag = (("" if args.width == 1.0 else f"_w{args.width:g}") + ("_bf16" if args.bf16 else "")
           + ("" if args.class_weight_power == 0.5 else f"_cw{args.class_weight_power:g}")
           + (f"_from_{Path(args.init).stem}" if args.init else ""))
    checkpoint = WORK / (f"cnn{tag}_ckpt.keras" if not args.limit else "cnn_smoke.keras")
    log(f"width {args.width:g}, dropout {tuple(args.dropout)}, {args.epochs} epochs, peak learning rate "
        f"{args.learning_rate:g}, class weights ^{args.class_weight_power:g}, "
        f"{'from ' + args.init if args.init else 'from scratch'}, checkpoint {checkpoint.name}")
    initial = keras.models.load_model(args.init, compile=False).get_weights() if args.init else None

    def build() -> keras.Model:
        model = build_cnn(len(categories), args.width, tuple(args.dropout))
        if initial is not None:
            model.set_weights(initial)
        return model

    trained = fit_resumable(build, args.learning_rate, args, train_ds, val_ds, len(y_train), checkpoint, log)
    model = as_float32(trained, build)

    test_accuracy = float(np.mean(np.argmax(model.predict(x_test, batch_size=512, verbose=0), 1) == y_test))
    log(f"test accuracy {test_accuracy:.4f}")
    model.save(args.out, include_optimizer=False)  # legacy HDF5: the format the seed's users have
    write_classes(Path(args.out).with_name("cnn.classes.json"), categories)
    log(f"saved {args.out}")
    if args.limit:  # a smoke run leaves no checkpoint behind to be resumed by mistake
        checkpoint.unlink(missing_ok=True)
        checkpoint.with_suffix(".json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
