"""Accuracy metrics as pure functions over arrays (no pytest, no models)."""

from __future__ import annotations

import math

import numpy as np

from pytest_sketchbench.results import Accuracy, CategoryAccuracy, Disagreement, Parity


def wilson_interval(successes: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion: honest near 0 and 1, unlike the normal one."""
    if total <= 0:
        return (0.0, 1.0)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return (low, high)


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose label is among the k highest probabilities (ties broken by index)."""
    k = min(k, probabilities.shape[1])
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


# scikit-learn's definitions (confusion_matrix, precision_recall_fscore_support with zero_division=0), computed with
# numpy: importing scikit-learn costs 1.4 s in every run. tests/test_metrics.py holds them equal to scikit-learn's.

def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true category, columns = predicted category (a pair outside 0…n_classes−1 is not counted)."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    inside = (labels >= 0) & (labels < n_classes) & (predicted >= 0) & (predicted < n_classes)
    cells = labels[inside] * n_classes + predicted[inside]
    return np.bincount(cells, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _counts(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Per class: right answers, answers given, drawings of it (an answer outside the classes still counts
    against its drawing's class, as in scikit-learn)."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)

    def per_class(values: np.ndarray) -> np.ndarray:
        return np.bincount(values[(values >= 0) & (values < n_classes)], minlength=n_classes).astype(np.float64)

    return per_class(labels[labels == predicted]), per_class(predicted), per_class(labels)


def _precision_recall_f1(hits: np.ndarray, answered: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per class: precision, recall and F1, 0 where undefined (scikit-learn's zero_division=0)."""
    zeros = np.zeros(len(hits))
    precision = np.divide(hits, answered, out=zeros.copy(), where=answered > 0)
    recall = np.divide(hits, support, out=zeros.copy(), where=support > 0)
    both = precision + recall
    return precision, recall, np.divide(2 * precision * recall, both, out=zeros.copy(), where=both > 0)


def per_category(labels: np.ndarray, predicted: np.ndarray, categories: list[str]) -> dict[str, CategoryAccuracy]:
    """Precision, recall (= the category's accuracy), F1 and support for each category."""
    hits, answered, support = _counts(labels, predicted, len(categories))
    precision, recall, f1 = _precision_recall_f1(hits, answered, support)
    return {
        name: CategoryAccuracy(precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]),
                               support=int(support[i]), accuracy=float(recall[i]))
        for i, name in enumerate(categories)
    }


def averaged_scores(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, float]:
    """Macro and micro precision / recall / F1."""
    counts = _counts(labels, predicted, n_classes)
    precision, recall, f1 = _precision_recall_f1(*counts)
    (micro_p,), (micro_r,), (micro_f1,) = _precision_recall_f1(*(np.array([c.sum()]) for c in counts))
    return {"macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()), "micro_precision": float(micro_p), "micro_recall": float(micro_r),
            "micro_f1": float(micro_f1)}


def accuracy_report(probabilities: np.ndarray | None, predicted: np.ndarray, labels: np.ndarray,
                    categories: list[str]) -> Accuracy:
    """Everything the accuracy tests and reports need.

    ``probabilities`` may be None for models that return only a class (API models):
    then top-k is reported as not applicable (None) rather than faked.
    """
    n = len(labels)
    correct = int(np.sum(predicted == labels))
    low, high = wilson_interval(correct, n)
    return Accuracy(
        n_samples=n, correct=correct, accuracy=correct / n if n else 0.0, accuracy_ci95=[low, high],
        top3_accuracy=None if probabilities is None else top_k_accuracy(probabilities, labels, 3),
        top5_accuracy=None if probabilities is None else top_k_accuracy(probabilities, labels, 5),
        **averaged_scores(labels, predicted, len(categories)),
        per_category=per_category(labels, predicted, categories),
        confusion_matrix=confusion_matrix(labels, predicted, len(categories)).tolist(), labels=list(categories),
        invalid_predictions=int(np.sum((predicted < 0) | (predicted >= len(categories)))))


def parity(predicted: np.ndarray, other_predicted: np.ndarray, labels: np.ndarray,
           probabilities: np.ndarray | None = None, other_probabilities: np.ndarray | None = None,
           listed: int = 50) -> Parity:
    """How closely one model follows another on the same drawings: the share of drawings where both name
    the same class (with a Wilson 95 % interval), the largest probability difference where both give
    probabilities, and the first ``listed`` drawings where they disagree (index, label, both answers)."""
    predicted, other_predicted = np.asarray(predicted), np.asarray(other_predicted)
    same = predicted == other_predicted
    n, agreeing = len(same), int(same.sum())
    differing = np.flatnonzero(~same)
    result = Parity(n_samples=n, agreement=agreeing / n if n else 0.0,
                    agreement_ci95=list(wilson_interval(agreeing, n)), disagreements=int(differing.size),
                    disagreeing=[Disagreement(index=int(i), label=int(labels[i]), predicted=int(predicted[i]),
                                              with_predicted=int(other_predicted[i])) for i in differing[:listed]],
                    max_probability_diff=None, mean_probability_diff=None)
    if probabilities is not None and other_probabilities is not None:
        difference = np.abs(np.asarray(probabilities, np.float64) - np.asarray(other_probabilities, np.float64))
        result.max_probability_diff = float(difference.max()) if difference.size else 0.0
        result.mean_probability_diff = float(difference.mean()) if difference.size else 0.0
    return result


def cost_per_1000(api: dict) -> float | None:
    """Estimated cost per 1,000 drawings sent (retries included in the cost, as they are billed)."""
    drawings = api.get("successes", 0) + api.get("invalid", 0) + api.get("failed", 0)
    return None if not drawings else api.get("estimated_cost_usd", 0.0) / drawings * 1000
