"""Train the ``cnn`` model (Keras, 28×28 grayscale) and save ``models/cnn.h5``.

    python models/train_cnn.py [--epochs 30]      # resumes from models/.work/cnn_ckpt.keras

Then ``python models/export_cnn.py`` writes the ONNX, int8 ONNX and TorchScript copies.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from recipe_common import MODELS_DIR, SEED, Log, class_weights, load_split_arrays, write_classes  # noqa: E402

WORK = MODELS_DIR / ".work"


def build_cnn(n_classes: int) -> keras.Model:
    """Four convolutional blocks (conv-BN-ReLU), then a small dense head."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for filters, convs, pool in ((32, 2, True), (64, 2, True), (128, 1, True), (192, 1, False)):
        for _ in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.4)(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="sketch_cnn")


def augmenter() -> keras.Sequential:
    """Small shifts, rotations and zooms: people draw off-centre and at odd scales."""
    return keras.Sequential([
        layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=SEED),
        layers.RandomRotation(0.04, fill_mode="constant", seed=SEED),
        layers.RandomZoom(0.1, fill_mode="constant", seed=SEED),
    ])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=0, help="train on this many drawings (smoke test)")
    parser.add_argument("--out", default=str(MODELS_DIR / "cnn.h5"))
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    WORK.mkdir(exist_ok=True)
    log = Log(WORK / "train_cnn.log")
    data = load_split_arrays()
    categories = data["categories"]
    (x_train, y_train), (x_val, y_val) = data["train"], data["validation"]
    if args.limit:
        pick = np.random.default_rng(SEED).permutation(len(x_train))[: args.limit]
        x_train, y_train = x_train[pick], y_train[pick]
    log(f"train {x_train.shape}, validation {x_val.shape}, {len(categories)} categories")

    augment = augmenter()
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=SEED, reshuffle_each_iteration=True)
        .batch(args.batch_size)
        .map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(512)

    checkpoint = WORK / ("cnn_ckpt.keras" if not args.limit else "cnn_smoke.keras")
    state_path = checkpoint.with_suffix(".json")
    start_epoch = 0
    if checkpoint.exists() and state_path.exists():
        model = keras.models.load_model(checkpoint)
        start_epoch = json.loads(state_path.read_text())["epoch"]
        log(f"resuming after epoch {start_epoch}")
    else:
        model = build_cnn(len(categories))
        steps = args.epochs * int(np.ceil(len(x_train) / args.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.02)
        model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"parameters: {model.count_params():,}")

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            model.save(checkpoint)
            state_path.write_text(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}))
            log(f"epoch {epoch + 1}/{args.epochs} " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()))

    started = time.time()
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, initial_epoch=start_epoch,
              class_weight=class_weights(y_train, len(categories)), callbacks=[Checkpoint()], verbose=2)
    log(f"training wall time this run: {time.time() - started:.0f}s")

    x_test, y_test = data["test"]
    test_accuracy = float(np.mean(np.argmax(model.predict(x_test, batch_size=512, verbose=0), 1) == y_test))
    log(f"test accuracy {test_accuracy:.4f}")
    model.save(args.out, include_optimizer=False)  # legacy HDF5: the format the seed's users have
    write_classes(Path(args.out).with_name("cnn.classes.json"), categories)
    log(f"saved {args.out}")
    if args.limit:  # a smoke run leaves no checkpoint behind to be resumed by mistake
        checkpoint.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
