"""Where the shipped cnn's errors are, and whether cheap remedies would remove them.

    python models/analyse_errors.py [models/cnn.h5] [--other OTHER.h5]

Reports, on the test split: the most frequent confusions, the share of errors between the six animals,
how many errors a second network (``--other``, e.g. the width-1 cnn: ``git show 7563e8b:models/cnn.h5``)
shares, what averaging the two gives, and what a prior correction (``log p - tau * log prior``, tau
chosen on the validation split) gives. None of this is the shipped figure: ``evaluate.py`` is.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from recipe_common import MODELS_DIR, load_split_arrays  # noqa: E402

ANIMALS = ("cat", "dog", "bear", "lion", "tiger", "elephant")


def probabilities(path: str, data: dict) -> dict[str, np.ndarray]:
    model = keras.models.load_model(path, compile=False)
    return {split: model.predict(data[split][0], batch_size=512, verbose=0) for split in ("validation", "test")}


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(scores.argmax(1) == labels))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default=str(MODELS_DIR / "cnn.h5"))
    parser.add_argument("--other", default="", help="a second network: shared errors and the two averaged")
    args = parser.parse_args()
    data = load_split_arrays()
    categories = data["categories"]
    labels = {split: data[split][1] for split in ("validation", "test")}
    y = labels["test"]
    shipped = probabilities(args.model, data)
    predicted = shipped["test"].argmax(1)
    wrong = predicted != y
    print(f"{args.model}: test top-1 {accuracy(shipped['test'], y):.4f}, {wrong.sum()} errors of {len(y)}")
    for (truth, guess), count in Counter(zip(y[wrong], predicted[wrong], strict=True)).most_common(8):
        print(f"  {categories[truth]} read as {categories[guess]}: {count}")
    animal = np.isin(np.array(categories), ANIMALS)
    between = wrong & animal[y] & animal[predicted]
    print(f"between two animals: {between.sum()} of {wrong.sum()} errors; were they all right, top-1 would be "
          f"{1 - (wrong.sum() - between.sum()) / len(y):.4f}")

    train_labels = data["train"][1]
    log_prior = np.log(np.bincount(train_labels, minlength=len(categories)) / len(train_labels))
    log_p = {split: np.log(shipped[split] + 1e-12) for split in shipped}
    taus = np.round(np.arange(0, 1.01, 0.125), 3)
    best = max(taus, key=lambda tau: accuracy(log_p["validation"] - tau * log_prior, labels["validation"]))
    print(f"prior correction, tau {best} (best on validation): test top-1 "
          f"{accuracy(log_p['test'] - best * log_prior, y):.4f}")

    if args.other:
        other = probabilities(args.other, data)
        other_wrong = other["test"].argmax(1) != y
        print(f"{args.other}: test top-1 {accuracy(other['test'], y):.4f}; errors shared with the shipped one: "
              f"{(wrong & other_wrong).sum()} of {wrong.sum()}; the two averaged: "
              f"{accuracy(shipped['test'] + other['test'], y):.4f}")


if __name__ == "__main__":
    main()
