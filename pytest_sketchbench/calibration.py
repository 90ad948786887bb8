"""Do a model's confidences mean anything? From the probabilities the accuracy pass already has (no extra model
call): expected calibration error over the top-label confidence, negative log-likelihood, Brier score and mean
confidence, each with a bootstrap interval over drawings, and the reliability diagram's points.

ECE is stated with its binning because its value depends on it: ``BINS`` equal-width bins of the top-label
confidence over [0, 1] (Guo et al. 2017's reading, the one most papers report), weighted by the drawings in each.
"""

from __future__ import annotations

import numpy as np

from pytest_sketchbench.results import Calibration

BINS = 15
RESAMPLES = 200  # bootstrap resamples for the intervals: a few tenths of a second on the bundled split
EPSILON = 1e-12  # probabilities are clipped here before the logarithm (a confident wrong answer costs ~27.6)


def _bin_of(confidence: np.ndarray) -> np.ndarray:
    """Each drawing's bin: ``BINS`` equal-width bins over [0, 1], right edges closed."""
    edges = np.linspace(0.0, 1.0, BINS + 1)
    return np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, BINS - 1)


def _expected_calibration_error(confidence: np.ndarray, correct: np.ndarray) -> float:
    which = _bin_of(confidence)
    counts = np.bincount(which, minlength=BINS)
    gap = np.abs(np.bincount(which, correct, BINS) - np.bincount(which, confidence, BINS))
    return float(gap.sum() / max(counts.sum(), 1))


def _figures(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ECE, NLL, Brier, mean confidence of one sample of drawings."""
    n, classes = probabilities.shape
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    true_probability = probabilities[np.arange(n), labels]
    nll = float(-np.log(np.clip(true_probability, EPSILON, 1.0)).mean())
    squared = (probabilities ** 2).sum(axis=1) - 2 * true_probability + 1.0  # Σ (p − one-hot)² per drawing
    return np.array([_expected_calibration_error(confidence, correct), nll, float(squared.mean()),
                     float(confidence.mean())])


def calibration_report(probabilities: np.ndarray, labels: np.ndarray, seed: int = 0) -> Calibration | None:
    """The figures with 95 % percentile-bootstrap intervals, or None when there is nothing to judge (no
    probabilities, no drawings, or a label outside the model's columns)."""
    labels = np.asarray(labels)
    if probabilities is None or len(labels) == 0 or labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        return None
    probabilities = np.asarray(probabilities, np.float64)
    point = _figures(probabilities, labels)
    rng = np.random.default_rng(seed)
    samples = np.array([_figures(probabilities[pick], labels[pick])
                        for pick in (rng.integers(0, len(labels), len(labels)) for _ in range(RESAMPLES))])
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = _bin_of(confidence)  # the reliability diagram, as scikit-learn's calibration_curve (uniform) draws it
    counts = np.bincount(which, minlength=BINS)
    filled = counts > 0
    accuracy_in_bin = np.bincount(which, correct, BINS)[filled] / counts[filled]
    confidence_in_bin = np.bincount(which, confidence, BINS)[filled] / counts[filled]
    return Calibration(
        binning=f"{BINS} equal-width bins of the top-label confidence", n_samples=int(len(labels)),
        ece=float(point[0]), ece_ci95=[float(low[0]), float(high[0])],
        nll=float(point[1]), nll_ci95=[float(low[1]), float(high[1])],
        brier=float(point[2]), brier_ci95=[float(low[2]), float(high[2])],
        mean_confidence=float(point[3]), mean_confidence_ci95=[float(low[3]), float(high[3])],
        reliability=[[float(c), float(a), int(n)] for c, a, n in
                     zip(confidence_in_bin, accuracy_in_bin, counts[counts > 0], strict=True)])
