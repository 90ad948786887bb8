"""Baselines: statistical decisions on constructed data, and the gate as a user runs it."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from conftest import REPO, assert_ran, judged_on_this_host, run_options
from pytest_sketchbench.baseline import (
    accuracy_verdict,
    latency_shift,
    latency_verdict,
    load_baseline,
    mcnemar_exact,
)
from pytest_sketchbench.errors import SketchBenchError


def paired(n: int, lost: int, gained: int, base_correct: int = 800):
    before = np.zeros(n, bool)
    before[:base_correct] = True
    now = before.copy()
    now[:lost] = False
    now[base_correct:base_correct + gained] = True
    return before, now


@pytest.mark.parametrize("lost, gained, verdict", [
    (0, 0, "no significant change"),        # identical predictions
    (3, 1, "no significant change"),        # small, insignificant drop
    (60, 5, "regression"),                  # 5.5 points, p ≪ 0.01
    (5, 60, "improvement"),
    (12, 2, "no significant change"),       # 1 point > margin: the p-value decides
])
def test_mcnemar_decisions(lost, gained, verdict):
    result = mcnemar_exact(*paired(1000, lost, gained))
    assert result["lost"] == lost and result["gained"] == gained
    expected = verdict
    if (lost, gained) == (12, 2):
        expected = "regression" if result["p_value"] < 0.01 else "no significant change"
    if (lost, gained) == (3, 1):
        assert result["p_value"] > 0.5
    assert accuracy_verdict(result, margin=0.005, alpha=0.01) == expected


def test_mcnemar_exact_p_value_matches_binomial():
    result = mcnemar_exact(*paired(1000, 10, 0))
    assert result["p_value"] == pytest.approx(2 * 0.5**10)


def test_small_but_significant_drop_within_margin_passes():
    result = mcnemar_exact(*paired(100000, 300, 0, 90000))  # 0.3 points, p tiny
    assert result["p_value"] < 1e-10 and accuracy_verdict(result, 0.005, 0.01) == "significant, within margin"


def test_latency_decisions():
    rng = np.random.default_rng(1)
    base = rng.lognormal(np.log(1e-3), 0.1, 300)
    assert latency_verdict(latency_shift(base, rng.lognormal(np.log(1e-3), 0.1, 300)), 1.1, 0.01) \
        == "no significant change"
    slower = latency_shift(base, base * 1.5)
    assert slower["ratio"] == pytest.approx(1.5) and latency_verdict(slower, 1.1, 0.01) == "regression"
    assert latency_verdict(latency_shift(base, base * 1.05), 1.1, 0.01) == "significant, within tolerance"
    assert latency_verdict(latency_shift(base, base * 0.5), 1.1, 0.01) == "improvement"


def test_unreadable_baseline(tmp_path):
    (tmp_path / "b.json.gz").write_bytes(b"nope")
    with pytest.raises(SketchBenchError, match="not a readable baseline"):
        load_baseline(tmp_path / "b.json.gz")
    with pytest.raises(SketchBenchError, match="baseline file not found"):
        load_baseline(tmp_path / "missing.json.gz")


CONFTEST = textwrap.dedent('''
    import os
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    options = {"weights": "centroid.npz"}
    if os.environ.get("DEGRADE"):
        options["degrade"] = int(os.environ["DEGRADE"])
    if os.environ.get("SLEEP"):
        options["sleep_s"] = float(os.environ["SLEEP"])
    register_model("centroid", **options)(CentroidModel)
''')


def _run(pytester, *args):
    return pytester.runpytest_subprocess(*run_options(None, budget=0.2, batch_sizes="1"),
                                         "--sketch-models=centroid", *args)


@pytest.fixture
def baseline_project(centroid_project):
    centroid_project.makeconftest(CONFTEST)
    for name in ("test_baseline.py", "test_latency.py"):
        centroid_project.copy_example(str(REPO / "benchmarks" / name))
    return centroid_project


@pytest.mark.slow
def test_saved_baseline_then_degraded_model_fails_with_effect_and_p_value(baseline_project, monkeypatch, tmp_path):
    saved = tmp_path / "base.json.gz"
    first = _run(baseline_project, f"--sketch-save-baseline={saved}", "--sketch-samples-per-category=60")
    assert_ran(first, skipped=4, passed=1, measured=3)
    assert saved.exists() and saved.stat().st_size < 20000
    same = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=60",
                "-k", "not latency")  # µs-scale timings of a numpy model are too noisy for this check
    assert same.parseoutcomes().get("failed", 0) == 0
    same.stdout.fnmatch_lines(["*compared with the baseline:*", "*centroid*accuracy*no significant change*"])
    monkeypatch.setenv("DEGRADE", "4")
    worse = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=60",
                 f"--sketch-json={tmp_path}/r.json", "-k", "not latency")
    worse.assert_outcomes(failed=1, passed=2)
    worse.stdout.re_match_lines([r"centroid accuracy regressed: 0\.\d{4} → 0\.\d{4} \(-0\.\d{4}, \d+ drawings lost, "
                                 r"\d+ gained, p = [0-9.e-]+\) against baseline .*base\.json\.gz; significant"])
    import json

    report = json.loads((tmp_path / "r.json").read_text())["comparison_to_baseline"]
    assert report["regressions"] == 1 and report["rows"][0]["verdict"] == "regression"


@pytest.mark.alone
def test_latency_gate_catches_injected_sleep(baseline_project, monkeypatch, tmp_path):
    saved = tmp_path / "base.json.gz"
    _run(baseline_project, f"--sketch-save-baseline={saved}", "--sketch-samples-per-category=5")
    monkeypatch.setenv("SLEEP", "0.002")
    slow = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=5",
                "-k", "latency_vs")
    if not judged_on_this_host(slow):  # a wall-clock regression on a busy host: inconclusive, never passed
        slow.assert_outcomes(skipped=1)
        return
    slow.assert_outcomes(failed=1)
    slow.stdout.re_match_lines([r"centroid p50 latency @1 \(ms\) regressed: 0\.\d+ → 2\.\d+ \(×\d+\.\d+, p = .*\)"])


def test_refuses_a_baseline_from_another_test_set(baseline_project, tmp_path):
    saved = tmp_path / "base.json.gz"
    _run(baseline_project, f"--sketch-save-baseline={saved}", "--sketch-samples-per-category=5")
    other = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=6",
                 "-k", "accuracy")
    other.assert_outcomes(errors=1)  # refused at setup: nothing is compared
    other.stdout.fnmatch_lines(["*the baseline was measured on another test set (115 drawings*"])  # 5 × 23


def test_latency_not_compared_across_machines():
    from pytest_sketchbench.baseline import DEFAULTS, BaselineComparison

    here = {"cpu": {"model": "AMD EPYC", "logical_cores": 2}, "gpus": []}
    baseline = {"device_profile": "cpu", "hardware": here, "models": {}}
    comparison = BaselineComparison(baseline, dict(DEFAULTS), "m", "cpu", "b.json.gz")
    assert comparison.hardware_differs(here) is None
    other = {"cpu": {"model": "Intel Xeon", "logical_cores": 4}, "gpus": []}
    assert "AMD EPYC ×2, no GPU vs this run's Intel Xeon ×4, no GPU" in comparison.hardware_differs(other)
    assert "profile 'cpu' vs this run's 'gpu'" in BaselineComparison(
        baseline, dict(DEFAULTS), "m", "gpu", "b").hardware_differs(here)
    forced = BaselineComparison(baseline, {**DEFAULTS, "compare_across_profiles": True}, "m", "gpu", "b")
    assert forced.hardware_differs(other) is None


@pytest.mark.slow
def test_memory_is_compared_only_in_the_same_load_order(baseline_project, tmp_path):
    """RSS growth depends on what the process ran before: a model benchmarked after another one is not
    compared with a baseline that measured it first (measured: onnx +110 MB after TensorFlow, +143 MB alone)."""
    baseline_project.makeconftest(CONFTEST + 'register_model("other", weights="centroid.npz")(CentroidModel)\n')
    saved = tmp_path / "base.json.gz"
    _run(baseline_project, f"--sketch-save-baseline={saved}", "--sketch-samples-per-category=10", "-k", "memory")
    after_other = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=10",
                       "--sketch-models=other,centroid", "-k", "memory", "-rs")
    after_other.stdout.fnmatch_lines(["*centroid: baseline memory was measured after nothing else had run in its "
                                      "process, this run's after numpy — RSS growth depends on load order*"])
    alone = _run(baseline_project, f"--sketch-baseline={saved}", "--sketch-samples-per-category=10", "-k", "memory")
    alone.assert_outcomes(passed=1)
