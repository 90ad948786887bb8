"""Metrics and latency statistics against scikit-learn and numpy, plus properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

from pytest_sketchbench.metrics import accuracy_report, top_k_accuracy, wilson_interval
from pytest_sketchbench.stats import latency_stats

CATEGORIES = ["a", "b", "c", "d", "e", "f"]


def test_wilson_interval_known_values():
    low, high = wilson_interval(81, 100)  # textbook example: 0.7222 – 0.8749
    assert low == pytest.approx(0.7222, abs=1e-4) and high == pytest.approx(0.8749, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_estimate(pair):
    successes, total = pair
    low, high = wilson_interval(successes, total)
    assert 0 <= low <= successes / total <= high <= 1


labels_and_probs = st.integers(2, 60).flatmap(lambda n: st.tuples(
    arrays(np.int64, n, elements=st.integers(0, len(CATEGORIES) - 1)),
    arrays(np.float64, (n, len(CATEGORIES)), elements=st.floats(0.001, 1.0)),
))


@settings(max_examples=60, deadline=None)
@given(labels_and_probs)
def test_report_matches_scikit_learn(data):
    labels, probs = data
    probs = probs + np.arange(probs.size).reshape(probs.shape) * 1e-9  # no ties: tie-breaking differs
    probs = probs / probs.sum(1, keepdims=True)
    predicted = probs.argmax(1)
    report = accuracy_report(probs, predicted, labels, CATEGORIES)
    assert report.accuracy == pytest.approx(accuracy_score(labels, predicted))
    assert report.macro_f1 == pytest.approx(f1_score(labels, predicted, average="macro",
                                                     labels=range(6), zero_division=0))
    if len(set(labels)) > 1:
        expected = top_k_accuracy_score(labels, probs, k=3, labels=range(6))
        assert report.top3_accuracy == pytest.approx(expected)
    matrix = np.array(report.confusion_matrix)
    assert matrix.sum() == len(labels) and np.trace(matrix) == report.correct
    assert (matrix.sum(1) == np.bincount(labels, minlength=6)).all()
    assert sum(row.support for row in report.per_category.values()) == len(labels)


def test_top_k_is_monotone_and_reaches_one():
    rng = np.random.default_rng(0)
    probs, labels = rng.random((200, 6)), rng.integers(0, 6, 200)
    values = [top_k_accuracy(probs, labels, k) for k in range(1, 7)]
    assert values == sorted(values) and values[-1] == 1.0


def test_class_only_models_get_no_top_k():
    report = accuracy_report(None, np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert report.top5_accuracy is None and report.accuracy == 0.5


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(1e-6, 5.0), min_size=1, max_size=300), st.integers(1, 256))
def test_latency_percentiles_are_ordered(samples, batch):
    stats = latency_stats(samples, batch)
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.p95_ms <= stats.p99_ms
    assert stats.p99_ms <= stats.max_ms + 1e-9
    assert stats.throughput_per_s == pytest.approx(batch / np.mean(samples))
    assert stats.median_ms == pytest.approx(np.median(samples) * 1000)


def test_latency_stats_refuses_no_samples():
    with pytest.raises(ValueError):
        latency_stats([])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(-1, n)), min_size=1, max_size=60))))
def test_the_numpy_scores_are_scikit_learns(case):
    """Confusion matrix, per-class and macro/micro precision, recall and F1 computed with numpy (scikit-learn's import
    costs every run 1.4 s) equal scikit-learn's own, answers outside the classes (-1, n) included."""
    from sklearn.metrics import confusion_matrix as sk_confusion
    from sklearn.metrics import precision_recall_fscore_support

    from pytest_sketchbench.metrics import averaged_scores, confusion_matrix, per_category

    n, pairs = case
    labels, predicted = (np.array(column) for column in zip(*pairs, strict=True))
    classes = np.arange(n)
    assert (confusion_matrix(labels, predicted, n) == sk_confusion(labels, predicted, labels=classes)).all()
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    ours = per_category(labels, predicted, [str(c) for c in classes])
    assert [c.precision for c in ours.values()] == pytest.approx(precision)
    assert [c.recall for c in ours.values()] == pytest.approx(recall)
    assert [c.f1 for c in ours.values()] == pytest.approx(f1)
    assert [c.support for c in ours.values()] == list(support)
    scores = averaged_scores(labels, predicted, n)
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(labels, predicted, labels=classes, average=average,
                                                     zero_division=0)
        assert [scores[f"{average}_{k}"] for k in ("precision", "recall", "f1")] == pytest.approx([p, r, f])


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(2, 80), elements=st.floats(0.01, 1.0)), st.randoms(use_true_random=False))
def test_the_reliability_diagram_is_scikit_learns_calibration_curve(confidence, random):
    from sklearn.calibration import calibration_curve

    from pytest_sketchbench.calibration import BINS, calibration_report

    labels = np.array([random.randrange(3) for _ in confidence])
    rest = (1 - confidence) / 2
    probabilities = np.stack([confidence, rest, rest], axis=1)  # class 0 is the answer wherever confidence > 1/3
    figures = calibration_report(probabilities, labels)
    if figures is None:
        return
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    accuracy_in_bin, confidence_in_bin = calibration_curve(correct, top, n_bins=BINS, strategy="uniform")
    assert [row[0] for row in figures.reliability] == pytest.approx(confidence_in_bin)
    assert [row[1] for row in figures.reliability] == pytest.approx(accuracy_in_bin)
