"""Options and config validated by meaning: a mistyped value is a usage error, never a silently
disabled gate or a nonsense measurement (from the fault catalogue of issue #13)."""

from __future__ import annotations

import pytest

from pytest_sketchbench.baseline import settings_from
from pytest_sketchbench.errors import SketchBenchError


def test_an_empty_model_list_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = pytester.runpytest("--sketch-models=,", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sketch-models: ',' names no model — name one or more of cnn, *"])


@pytest.mark.parametrize("option", ["--sketch-latency-budget=nan", "--sketch-eval-batch-size=0",
                                    "--sketch-threads=-1", "--sketch-samples-per-category=-5"])
def test_out_of_range_numbers_are_usage_errors(pytester, option):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = pytester.runpytest(option, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert option.split("=")[0] in result.stderr.str()


def test_more_threads_than_cores_are_clamped_and_said(centroid_project):
    from conftest import BUNDLED

    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.makepyfile("def test_x(sketch_model): pass")
    result = centroid_project.runpytest_subprocess(  # pinning and thread variables must not leak into this process
        f"--sketch-data={BUNDLED}", "--sketch-models=centroid", "--sketch-threads=999", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["sketchbench: threads: * intra-op per runtime*",
                                 "sketchbench: warning: 999 threads asked for, but only * cores are usable — using *"])


@pytest.mark.parametrize("table, problem", [
    ({"gate": "accuracy"}, "'gate' must be a list drawn from accuracy, latency, memory, size"),
    ({"gate": ["acuracy"]}, "'gate' must be a list"),
    ({"alpha": "0.01"}, "'alpha' must be a finite number"),
    ({"memory_margin": float("nan")}, "'memory_margin' must be a finite number"),
    ({"compare_across_profiles": 1}, "'compare_across_profiles' must be true or false"),
    ({"models": {"cnn": {"latency_max_ratio": True}}}, "[baseline.models.cnn]: 'latency_max_ratio'"),
])
def test_baseline_settings_are_typed(table, problem):
    with pytest.raises(SketchBenchError) as error:
        settings_from(table, "thresholds.toml")
    assert problem in str(error.value)


def test_the_shipped_baseline_settings_pass():
    import tomllib

    from conftest import REPO

    settings = settings_from(tomllib.loads((REPO / "thresholds.toml").read_text())["baseline"], "thresholds.toml")
    assert settings["gate"] == ["accuracy", "latency", "memory", "size"]
