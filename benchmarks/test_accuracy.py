"""Accuracy gates: overall top-1 (with a Wilson 95 % interval), top-5, and every category.

All three tests share one batched pass of the model over the test set (``sketch_predictions``).
"""


def test_accuracy(sketch_predictions, sketch_thresholds):
    sketch_thresholds.check_accuracy(sketch_predictions)


def test_top5_accuracy(sketch_predictions, sketch_thresholds):
    sketch_thresholds.check_top5(sketch_predictions)


def test_calibration(sketch_predictions, sketch_thresholds):
    """Do the confidences mean anything: expected calibration error against ``max_ece`` (NLL, Brier beside it)."""
    sketch_thresholds.check_calibration(sketch_predictions)


def test_category_accuracy(sketch_predictions, sketch_thresholds):
    sketch_thresholds.check_categories(sketch_predictions)


def test_parity(sketch_parity, sketch_thresholds):
    """Exports follow their source model: ``min_agreement`` / ``max_probability_diff`` with ``with = "<model>"``."""
    sketch_thresholds.check_parity(sketch_parity)
