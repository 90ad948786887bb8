"""What the model recipes share: the bundled split, input formats, checkpoints and logs.

The recipes train on the train split and choose epochs on the validation split that
``data/build_dataset.py`` derives (seeded, deterministic) from ``../shared/quickdraw-v2``;
the test split — the one the benchmarks use — is never seen during training.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
REPO = MODELS_DIR.parent
sys.path.insert(0, str(REPO / "data"))
sys.path.insert(0, str(REPO))

from build_dataset import build_splits  # noqa: E402

SEED = 1234


def load_split_arrays() -> dict:
    """Train / validation / test as 28×28 float32 (ink = 1.0) plus labels and categories."""
    built = build_splits()
    out = {"categories": built["categories"]}
    for name, split in built["splits"].items():
        images = split["images"].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
        out[name] = (images, split["labels"].astype(np.int64))
    return out


def class_weights(labels: np.ndarray, n_classes: int, power: float = 0.5) -> np.ndarray:
    """Inverse-frequency weights to ``power`` (0.5, the default: helps the small categories without
    drowning the large ones; 1.0 weighs every category equally)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    return (weights / weights.mean()).astype(np.float32)


def write_classes(path: Path, categories: list[str]) -> None:
    """Record the category order beside a model, so a mismatch is detected, not misread."""
    path.write_text(json.dumps({"categories": categories}, indent=1) + "\n")


class Log:
    """Append-only training log, so a run in the background can be followed and resumed."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.time()

    def __call__(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.time() - self.started:7.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a") as handle:
            handle.write(line + "\n")


def augmenter():
    """Small shifts, rotations and zooms: people draw off-centre and at odd scales."""
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=SEED),
        layers.RandomRotation(0.04, fill_mode="constant", seed=SEED),
        layers.RandomZoom(0.1, fill_mode="constant", seed=SEED),
    ])


def jitter_strokes(images, probability: float = 0.25):
    """Thicken the strokes of a random quarter of the batch (a 2×2 dilation): pens and renderers differ."""
    import tensorflow as tf

    thick = tf.nn.max_pool2d(images, 2, 1, "SAME")
    pick = tf.random.uniform((tf.shape(images)[0], 1, 1, 1)) < probability
    return tf.where(pick, thick, images)


def training_datasets(x_train, y_train, x_val, y_val, n_classes: int, batch_size: int, to_input=None,
                      weight_power: float = 0.5):
    """tf.data pipelines: augmented, one-hot (for label smoothing) and class-weighted train; plain validation.

    ``to_input`` turns a batch of 28×28 grayscale drawings into the model's input (identity for cnn).
    """
    import tensorflow as tf

    to_input = to_input or (lambda x: x)
    augment = augmenter()
    weights = tf.constant(class_weights(y_train, n_classes, weight_power))

    def train_batch(x, y):
        return to_input(jitter_strokes(augment(x, training=True))), tf.one_hot(y, n_classes), tf.gather(weights, y)

    train_ds = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=SEED, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(train_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = (tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(256)
              .map(lambda x, y: (to_input(x), tf.one_hot(y, n_classes))))
    return train_ds, val_ds


def limit_threads(threads: int) -> None:
    """Let two recipes train side by side on a small machine without fighting over cores."""
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def mixed_bfloat16(enabled: bool) -> None:
    """Train in mixed bfloat16 (float32 weights): about 1.3× faster on CPUs with AVX512_BF16."""
    if enabled:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def as_float32(model, build):
    """The trained weights in a float32 copy of the network: what is saved and exported, so every
    runtime computes in float32 (a mixed-precision graph would carry bfloat16 casts into the exports)."""
    import keras

    if keras.mixed_precision.global_policy().name == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    copy = build()
    copy.set_weights(model.get_weights())
    return copy


def fit_resumable(build, learning_rate: float, args, train_ds, val_ds, n_train: int, checkpoint: Path, log: Log):
    """Compile (cosine-decayed Adam, label smoothing 0.1) or resume from ``checkpoint``; save after every epoch."""
    import keras

    state_path = checkpoint.with_suffix(".json")
    start_epoch = 0
    if checkpoint.exists() and state_path.exists():
        model = keras.models.load_model(checkpoint)
        start_epoch = json.loads(state_path.read_text())["epoch"]
        log(f"resuming after epoch {start_epoch}")
    else:
        model = build()
        steps = args.epochs * int(np.ceil(n_train / args.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
        model.compile(keras.optimizers.Adam(schedule), keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    log(f"parameters: {model.count_params():,}")

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            model.save(checkpoint)
            state_path.write_text(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}))
            log(f"epoch {epoch + 1}/{args.epochs} " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()))

    started = time.time()
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, initial_epoch=start_epoch,
              callbacks=[Checkpoint()], verbose=2)
    log(f"training wall time this run: {time.time() - started:.0f}s")
    return model
