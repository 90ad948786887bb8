"""When a model scores near chance, say what is likely wrong with its input, from a quick probe.

The usual cause of a chance-level score is not the model but the contract between drawing and model:
black ink on white where the model learnt white on black, or pixels in 0–255 where it learnt 0–1. Each
alternative contract is tried on a small stratified sample; the best one, when it clearly beats the
configured one, becomes the fix the failure message names.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from pytest_sketchbench import preprocess
from pytest_sketchbench.data import Dataset, subsample
from pytest_sketchbench.measure import classify
from pytest_sketchbench.metrics import confusion_matrix

NEAR_CHANCE = 2.0  # an accuracy below twice chance (1 / categories) triggers the probe …
PROBE_DRAWINGS = 200


def near_chance(accuracy: float, n_categories: int) -> bool:
    """… and, with few categories (where twice chance is 1.0), only one closer to chance than to perfect."""
    chance = 1 / n_categories
    return accuracy < min(NEAR_CHANCE * chance, (1 + chance) / 2)


def probe_contracts(plugin, dataset: Dataset, columns: np.ndarray | None, accuracy: float) -> dict:
    """Accuracy of every (ink, value_range) contract on ~200 drawings; the best, if it clearly helps."""
    sample = subsample(dataset, max(1, math.ceil(PROBE_DRAWINGS / len(dataset.categories))))
    configured = {key: plugin.config.get(key) for key in ("ink", "value_range")}
    scores = []
    try:
        for ink, value_range in itertools.product(preprocess.INKS, preprocess.VALUE_RANGES):
            plugin.config.update(ink=ink, value_range=value_range)
            predicted = classify(plugin, sample.images, columns)
            scores.append(({"ink": ink, "value_range": value_range}, float(np.mean(predicted == sample.labels))))
    finally:
        for key, value in configured.items():
            if value is None:
                del plugin.config[key]
            else:
                plugin.config[key] = value
    best, best_accuracy = max(scores, key=lambda item: item[1])
    natural = {"ink": preprocess.NATURAL_INK.get(plugin.input_format), "value_range": "0-1"}
    current = {key: configured[key] or natural[key] for key in configured}
    change = {key: value for key, value in best.items() if value != current[key]}
    helps = bool(change) and best_accuracy > max(3 / len(dataset.categories), accuracy + 0.2)
    return {"accuracy": accuracy, "chance": 1 / len(dataset.categories), "drawings": len(sample),
            "tried": [{**contract, "accuracy": score} for contract, score in scores],
            "fix": change if helps else None, "fix_accuracy": best_accuracy if helps else None}


def category_order(labels: np.ndarray, predicted: np.ndarray, categories: list[str]) -> dict | None:
    """Near chance because the categories are in another order than the model's classes? The one-to-one
    relabelling of answers that matches the most labels (Hungarian assignment on the confusion matrix); None
    unless it scores well clear of chance — four times the probe's trigger, and three times the order given
    (a random model's best relabelling fits a little too, never that much)."""
    from scipy.optimize import linear_sum_assignment

    n = len(categories)
    confusion = confusion_matrix(labels, predicted, n)  # answers outside the categories (-1) are left out
    rows, columns = linear_sum_assignment(-confusion)
    total = max(len(labels), 1)
    reordered, given = float(confusion[rows, columns].sum() / total), float(np.trace(confusion) / total)
    moved = [(categories[r], categories[c]) for r, c in zip(rows, columns, strict=True) if r != c]
    if reordered <= max(4 * NEAR_CHANCE / n, 3 * given) or not moved:
        return None
    return {"accuracy": reordered, "moved": len(moved), "examples": moved[:3]}


def diagnosis_text(model: str, diagnosis: dict) -> str:
    """`` ≈ chance (1/22): with ink = "black-on-white" it scores 0.89 on 200 drawings — set ink in [models.x]``"""
    chance = f"≈ chance (1/{round(1 / diagnosis['chance'])})"
    order = diagnosis.get("category_order")
    if order and not diagnosis.get("fix"):
        shown = ", ".join(f"{label} answered as {answer}" for label, answer in order["examples"])
        return (f" {chance}: under another category order its answers match {order['accuracy']:.2f} of the labels "
                f"({order['moved']} categories moved: {shown}, …) — the categories file lists them in another "
                "order than the model's classes")
    if not diagnosis.get("fix"):
        return (f" {chance}: no ink polarity or value range helped on {diagnosis['drawings']} drawings — check the "
                "category order, the input size and the layout")
    settings = ", ".join(f'{key} = "{value}"' for key, value in diagnosis["fix"].items())
    return (f" {chance}: with {settings} it scores {diagnosis['fix_accuracy']:.2f} on {diagnosis['drawings']} "
            f"drawings — set {' and '.join(diagnosis['fix'])} in [models.{model}]")
