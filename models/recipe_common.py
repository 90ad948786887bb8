"""What the model recipes share: the bundled split, input formats, checkpoints and logs.

The recipes train on the train split and choose epochs on the validation split that
``data/build_dataset.py`` derives (seeded, deterministic) from ``../shared/quickdraw``;
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


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Square-root inverse-frequency weights: helps pizza (360 rows) without drowning cat."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = np.sqrt(counts.max() / counts)
    return {i: float(w) for i, w in enumerate(weights / weights.mean())}


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


def fit_resumable(build, learning_rate: float, args, train_ds, val_ds, y_train, n_classes: int,
                  checkpoint: Path, log: Log):
    """Compile (cosine-decayed Adam) or resume from ``checkpoint``; save it after every epoch."""
    import keras

    state_path = checkpoint.with_suffix(".json")
    start_epoch = 0
    if checkpoint.exists() and state_path.exists():
        model = keras.models.load_model(checkpoint)
        start_epoch = json.loads(state_path.read_text())["epoch"]
        log(f"resuming after epoch {start_epoch}")
    else:
        model = build()
        steps = args.epochs * int(np.ceil(len(y_train) / args.batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
        model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    log(f"parameters: {model.count_params():,}")

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            model.save(checkpoint)
            state_path.write_text(json.dumps({"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}))
            log(f"epoch {epoch + 1}/{args.epochs} " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()))

    started = time.time()
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, initial_epoch=start_epoch,
              class_weight=class_weights(y_train, n_classes), callbacks=[Checkpoint()], verbose=2)
    log(f"training wall time this run: {time.time() - started:.0f}s")
    return model
