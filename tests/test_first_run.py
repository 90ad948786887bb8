"""First run anywhere: the plugin costs nothing where it is not used, works without optional extras,
finds its bundled data from any project, resolves paths one way, and its reports never flatter."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from conftest import BUNDLED, assert_ran

PATH_PLUGIN = textwrap.dedent('''
    import numpy as np
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    @register_model("bypath", path="weights/centroid.npz")
    class ByPath(CentroidModel):
        def load(self):
            self.config["weights"] = str(self.require_file())
            super().load()
''')

LATENCY_AND_ACCURACY = textwrap.dedent('''
    def test_accuracy(sketch_predictions, sketch_thresholds):
        sketch_thresholds.check_accuracy(sketch_predictions)

    def test_latency(sketch_latency, sketch_thresholds):
        sketch_thresholds.check_latency(sketch_latency(1))
''')

@pytest.fixture
def bypath_project(centroid_project):
    """The centroid model registered with a relative ``path`` (its weights in weights/) and two tests."""
    centroid_project.makeconftest(PATH_PLUGIN)
    centroid_project.mkdir("weights")
    (centroid_project.path / "centroid.npz").rename(centroid_project.path / "weights" / "centroid.npz")
    centroid_project.makepyfile(test_bench=LATENCY_AND_ACCURACY)
    return centroid_project


FAST = ("--sketch-samples-per-category=5", "--sketch-latency-budget=0.02", "--sketch-batch-sizes=1",
        "-p", "no:cacheprovider")


def test_a_project_without_sketch_tests_sees_nothing_and_imports_nothing_heavy(pytester):
    pytester.makeconftest('''
        import sys
        def pytest_unconfigure(config):
            heavy = [m for m in ("pytest_sketchbench.session", "sklearn", "scipy", "numpy") if m in sys.modules]
            print("HEAVY-MODULES:", ",".join(heavy) or "none")
    ''')
    pytester.makepyfile("def test_plain(): assert True")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    assert "sketchbench:" not in result.stdout.str()  # no header lines (the plugins line is pytest's own)
    result.stdout.fnmatch_lines(["HEAVY-MODULES: none"])


def test_a_parallel_run_without_sketch_tests_leaves_its_workers_unpinned(pytester):
    """Installed is not in charge: under pytest -n, a project without sketch tests keeps every core and its thread
    pools on each worker (the plugin pins a worker only once it collects a sketch test: test_parallel)."""
    pytester.makepyfile(test_plain='''
        import os
        from pathlib import Path

        def where():
            placed = f"{sorted(os.sched_getaffinity(0))} {os.environ.get('OMP_NUM_THREADS')}"
            Path(f"{os.environ['PYTEST_XDIST_WORKER']}.placed").write_text(placed)

        def test_one(): where()
        def test_two(): where()
        def test_three(): where()
        def test_four(): where()
    ''')
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    expected = f"{sorted(os.sched_getaffinity(0))} {os.environ.get('OMP_NUM_THREADS')}"
    assert {path.name: path.read_text() for path in pytester.path.glob("*.placed")} == {
        "gw0.placed": expected, "gw1.placed": expected}


def test_works_without_xdist_under_strict_markers(bypath_project):
    result = bypath_project.runpytest_subprocess("-p", "no:xdist", "--strict-markers", "--sketch-models=bypath",
                                                   *FAST)
    assert_ran(result, measured=2)
    assert "xdist_group" not in result.stdout.str() + result.stderr.str()


def test_bundled_data_config_origin_and_ungated_note_in_the_header(bypath_project):
    """No --sketch-data and no thresholds.toml: the bundled split is used and the header says so."""
    result = bypath_project.runpytest("--sketch-models=bypath", *FAST)
    assert_ran(result, measured=2)
    result.stdout.fnmatch_lines([
        "sketchbench: models bypath; config none (no thresholds.toml at *: every model is measured, not gated)",
        f"sketchbench: data {BUNDLED} (bundled)",
    ])


def test_register_model_path_is_relative_to_its_file_not_the_working_directory(bypath_project):
    bypath_project.makefile(".toml", thresholds="[bypath]\nmin_accuracy = 0.1\n[other]\nmin_accuracy = 0.1\n"
                                                  "[models.other]\nplugin = \"centroid_plugin:CentroidModel\"\n"
                                                  "weights = \"weights/centroid.npz\"\n")
    elsewhere = bypath_project.mkdir("elsewhere")
    elsewhere.joinpath("unrelated.txt").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(elsewhere)  # a relative path resolved against the cwd would miss weights/centroid.npz
        result = bypath_project.runpytest(str(bypath_project.path), "--sketch-models=bypath", *FAST)
    assert_ran(result, passed=1, measured=1)  # bypath's accuracy is gated, its latency is not
    assert "no limits in the config" not in result.stdout.str()  # bypath has limits; 'other' is not selected


def test_model_without_limits_is_named_measured_not_gated(bypath_project):
    bypath_project.makefile(".toml", thresholds="[somebody_else]\nmin_accuracy = 0.1\n"
                                                  "[models.somebody_else]\nplugin = \"centroid_plugin:CentroidModel\""
                                                  "\nweights = \"weights/centroid.npz\"\n")
    result = bypath_project.runpytest("--sketch-models=bypath", "--sketch-json=r.json", "--sketch-html=r.html", *FAST)
    result.assert_outcomes(passed=0)
    assert result.parseoutcomes()["measured"] == 2  # its own outcome: never counted as a passed gate
    result.stdout.fnmatch_lines(["sketchbench: bypath: no limits in the config — measured, not gated",
                                 "*bypath*[MEASURED]*",
                                 "gates: 0 passed, 0 failed, 0 inconclusive; 2 measured, not gated (no limit set)",
                                 "*= 2 measured in *"])
    report = json.loads((bypath_project.path / "r.json").read_text())
    assert report["model_results"]["bypath"]["status"] == "measured"
    page = (bypath_project.path / "r.html").read_text()
    assert "<li class=measured>measured, not gated: bypath accuracy" in page and "<li class=pass>" not in page


def test_a_model_with_one_passed_gate_is_passed_and_its_ungated_test_measured(bypath_project):
    bypath_project.makefile(".toml", thresholds="[bypath]\nmin_accuracy = 0.1\n")
    result = bypath_project.runpytest("--sketch-models=bypath", "--sketch-json=r.json", *FAST)
    result.assert_outcomes(passed=1)
    assert result.parseoutcomes()["measured"] == 1
    assert json.loads((bypath_project.path / "r.json").read_text())["model_results"]["bypath"]["status"] == "passed"


def test_skip_reasons_are_summarised_in_one_line():
    from pytest_sketchbench.report.terminal import skip_summary

    reasons = ["Skipped: cnn: no --sketch-baseline given", "onnx: no --sketch-baseline given",
               "inconclusive: onnx accuracy 0.874 ≈ min_accuracy 0.9", "cnn is not an API model", "x" * 200]
    line = skip_summary(reasons, ["cnn", "onnx"], limit=3)
    assert line.startswith("skipped 5: 2× no --sketch-baseline given; 1× inconclusive (the INCONCLUSIVE lines")
    assert "1 more (-rs lists each)" in line and "x" * 100 not in line
    assert skip_summary([], ["cnn"]) is None


def test_benchmark_only_runs_the_latency_tests(bypath_project):
    result = bypath_project.runpytest("--sketch-models=bypath", "--benchmark-only", "-rs", *FAST)
    assert_ran(result, skipped=1, measured=1)
    result.stdout.fnmatch_lines(["SKIPPED [1] test_bench.py: Skipping non-benchmark (--benchmark-only active)."])
    result.stdout.fnmatch_lines(["*sketch latency, batch 1*", "*test_latency?bypath?*"])


def test_reports_keep_skipped_failed_and_passed_apart(bypath_project, tmp_path):
    bypath_project.makeconftest(PATH_PLUGIN + textwrap.dedent('''
        from pytest_sketchbench.errors import ModelUnavailable

        @register_model("absent")
        class Absent(CentroidModel):
            def load(self):
                raise ModelUnavailable("model 'absent'", "no service here", "start it first")
    '''))
    bypath_project.makefile(".toml", thresholds="[bypath]\nmin_accuracy = 0.99\n")
    report_dir = tmp_path / "reports"
    result = bypath_project.runpytest("--sketch-models=bypath,absent", f"--sketch-json={tmp_path}/r.json",
                                        f"--sketch-report-dir={report_dir}", *FAST)
    assert_ran(result, failed=1, skipped=2, measured=1)
    results = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert results["bypath"]["status"] == "failed" and results["absent"]["status"] == "skipped"
    summary = (report_dir / "summary.md").read_text()
    assert "| absent | ⏭️ skipped |" in summary and "| bypath | ❌ failed |" in summary
    assert "✅" not in summary
    assert "bypath accuracy 0." in summary and "< min_accuracy 0.990" in summary  # measured vs limit
    assert "absent skipped: model 'absent': no service here" in summary


def test_ties_are_reported_as_ties():
    from pytest_sketchbench.report.analysis import winners

    assert winners({"cnn": 0.9045, "onnx": 0.9045, "int8": 0.9050}) == "int8"
    assert winners({"cnn": 0.9045, "onnx": 0.9045, "torch": 0.9045}) == "cnn = onnx = torch (tie)"
    assert winners({"a": 1.0, "b": 2.0}, lowest=True) == "a"
    assert winners({}) is None


def test_category_colours_follow_the_configured_limit():
    from pytest_sketchbench.report.charts import category_colour

    assert category_colour(0.58, 0.55) == category_colour(0.9, 0.8)  # above its own limit: not red
    assert category_colour(0.79, 0.80) != category_colour(0.81, 0.80)
    assert category_colour(0.1, None) not in (category_colour(0.1, 0.5), category_colour(0.9, 0.5))


def test_latency_p_value_is_the_one_that_decided():
    from pytest_sketchbench.baseline import deciding_p, latency_verdict

    faster = {"ratio": 0.5, "p_value": 1.0, "p_faster": 1e-6}
    assert deciding_p(faster) == (1e-6, "Mann–Whitney U, one-sided: faster")
    assert latency_verdict(faster, 1.5, 0.01) == "improvement"
    slower_noise = {"ratio": 1.1, "p_value": 0.2, "p_faster": 0.8}
    assert deciding_p(slower_noise)[0] == 0.2 and latency_verdict(slower_noise, 1.5, 0.01) == "no significant change"


def test_missing_matplotlib_is_said_not_silent(monkeypatch):
    from pytest_sketchbench.report import charts, html_report
    from pytest_sketchbench.report.analysis import comparison
    from pytest_sketchbench.report.json_report import json_safe

    monkeypatch.setattr(charts, "pyplot", lambda: None)
    real_find_spec = charts.importlib.util.find_spec
    monkeypatch.setattr(charts.importlib.util, "find_spec",
                        lambda name, *args: None if name == "matplotlib" else real_find_spec(name, *args))
    metadata = {"timestamp": "t", "test_samples": 1, "categories": ["cat"], "notes": []}
    report = {"benchmark_metadata": metadata, "comparison_analysis": json_safe(comparison({}))}
    page = html_report.standalone_html(report, {})
    assert charts.MISSING_NOTE.replace("'", "&#x27;") in page
