"""The plugin as a user sees it: options, markers, model selection, thresholds, registration routes."""

from __future__ import annotations

import textwrap

import pytest

from conftest import assert_ran, run_options

ACCURACY_TESTS = textwrap.dedent('''
    def test_accuracy(sketch_predictions, sketch_thresholds):
        sketch_thresholds.check_accuracy(sketch_predictions)

    def test_categories(sketch_predictions, sketch_thresholds):
        sketch_thresholds.check_categories(sketch_predictions)

    def test_latency(sketch_latency, sketch_thresholds):
        sketch_thresholds.check_latency(sketch_latency(1))
''')

REGISTER_BY_DECORATOR = textwrap.dedent('''
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    register_model("centroid", weights="centroid.npz")(CentroidModel)
''')


def run(pytester, *args):
    return pytester.runpytest(*run_options(20, budget=0.05), *args)


def test_help_shows_option_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*sketchbench: sketch-classifier benchmarks as tests*", "*--sketch-models=*",
                                 "*--sketch-batch-sizes=*", "*--sketch-json=PATH*", "*sketch_models (string)*"])


def test_markers_registered_and_strict_markers_clean(pytester):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.sketch_device("gpu-large")
        def test_big(): pass

        @pytest.mark.requires_gpu
        def test_gpu(): pass

        def test_plain(): pass
    ''')
    result = pytester.runpytest("--strict-markers", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs device profile gpu-large; this run's profile is 'cpu'*"])
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.sketch_device(*profiles)" in markers and "@pytest.mark.requires_gpu" in markers


def test_forced_device_profile_runs_marked_test(pytester):
    pytester.makepyfile('''
        import pytest

        @pytest.mark.sketch_device("gpu-large")
        def test_big(): pass
    ''')
    run(pytester, "--sketch-device=gpu-large").assert_outcomes(passed=1)


def test_unknown_model_name_is_usage_error(pytester):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = run(pytester, "--sketch-models=cnn,nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sketch-models: unknown model name(s): nope*available: cnn, mobilenet, onnx*"])


def test_list_models(pytester):
    result = pytester.runpytest("--sketch-list-models")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["available sketchbench models:", "*cnn*builtin*cnn.h5", "*onnx-int8*"])


@pytest.mark.alone
def test_decorator_registration_and_passing_thresholds(centroid_project):
    centroid_project.makeconftest(REGISTER_BY_DECORATOR)
    centroid_project.makefile(".toml", thresholds='''
        [centroid]
        min_accuracy = 0.2
        min_category_accuracy = 0.0
        max_latency_ms = 1000
    ''')
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    result = run(centroid_project, "--sketch-models=centroid", "-v", "-rs")
    if "not judged on this host" in result.stdout.str():  # an absolute limit on a busy host: inconclusive
        result.assert_outcomes(passed=2, skipped=1)
    else:
        result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_accuracy?centroid? PASSED*", "*sketchbench summary*", "centroid * acc 0.*"])


@pytest.mark.alone
def test_failing_thresholds_name_the_figure_the_limit_and_the_categories(centroid_project):
    centroid_project.makeconftest(REGISTER_BY_DECORATOR)
    centroid_project.makefile(".toml", thresholds='''
        [centroid]
        min_accuracy = 0.99
        max_latency_ms = 0.000001
        [centroid.category_accuracy]
        cat = 0.999
        sun = 0.0
    ''')
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    result = run(centroid_project, "--sketch-models=centroid", "-rs")
    busy = "not judged on this host" in result.stdout.str()  # an absolute limit on a busy host: inconclusive
    result.assert_outcomes(failed=2, skipped=1) if busy else result.assert_outcomes(failed=3)
    result.stdout.re_match_lines([
        r"centroid accuracy 0\.\d{3} \(95% CI 0\.\d{3}–0\.\d{3}\) < min_accuracy 0\.990 on 460 drawings",
        r"centroid: 1 of 2 categories below their accuracy limit: cat 0\.\d{3} < 0\.999 \(n=20\)",
        r".*centroid p50 latency \d+\.\d{3} ms \(95% CI \d+\.\d{3}–\d+\.\d{3}\) > max_latency_ms 1e-06 at batch 1 "
        r"over [\d,]+ rounds",
    ])


def test_config_table_registration_with_plugin_path(centroid_project):
    centroid_project.makefile(".toml", thresholds='''
        [models.viaconfig]
        plugin = "centroid_plugin:CentroidModel"
        weights = "centroid.npz"
        [viaconfig]
        min_accuracy = 0.2
    ''')
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    run(centroid_project, "--sketch-models=viaconfig").assert_outcomes(passed=1)


def test_entry_point_registration(centroid_project, monkeypatch):
    """A third-party package that declares ``sketchbench.models`` in its metadata is picked up."""
    dist = centroid_project.mkdir("thirdparty-0.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sketchbench.models]\nfromentry = centroid_plugin:EntryModel\n")
    with open(centroid_project.path / "centroid_plugin.py", "a") as handle:
        handle.write("\nclass EntryModel(CentroidModel):\n    default_config = {'weights': 'centroid.npz'}\n")
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    monkeypatch.syspath_prepend(str(centroid_project.path))
    result = run(centroid_project, "--sketch-models=fromentry", "-p", "no:randomly")
    assert_ran(result, measured=3)


def test_model_that_outputs_nan_is_an_error_naming_it(centroid_project):
    centroid_project.makeconftest(REGISTER_BY_DECORATOR + textwrap.dedent('''
        import numpy as np

        @register_model("broken", weights="centroid.npz")
        class Broken(CentroidModel):
            def infer(self, prepared):
                out = super().infer(prepared)
                out[0, 0] = np.nan
                return out
    '''))
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    result = run(centroid_project, "--sketch-models=centroid,broken")
    assert_ran(result, errors=2, measured=4)  # centroid's tests still pass and keep their results
    result.stdout.fnmatch_lines(["*model 'broken': NaN or inf in the outputs of 1 drawing(s)*"])
    result.stdout.fnmatch_lines(["centroid * acc 0.*"])


def test_missing_model_file_names_file_and_fix(pytester, tmp_path):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = run(pytester, "--sketch-models=onnx", f"--sketch-models-dir={tmp_path}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*model 'onnx': file not found: {tmp_path}/cnn.onnx — check the path*"])


def test_bad_data_path_is_one_line(pytester):
    pytester.makepyfile("def test_x(sketch_dataset): pass")
    result = pytester.runpytest("--sketch-data=/no/such/file.npz", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*/no/such/file.npz: no such file or folder — pass --sketch-data a .npz*"])
    assert "Traceback" not in result.stdout.str()


def test_malformed_toml_is_usage_error(pytester):
    pytester.makefile(".toml", thresholds="[cnn\nmin_accuracy = 0.9")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*thresholds.toml: malformed TOML*"])


@pytest.mark.parametrize("body, expected", [
    ("[cnn]\nmin_acuracy = 0.9", "thresholds.toml [cnn]: unknown key 'min_acuracy' — known keys: category_acc"),
    ("[cnn]\nmin_accuracy = \"high\"", "thresholds.toml [cnn]: 'min_accuracy' must be a number, got str 'high'"),
    ("[cnnn]\nmin_accuracy = 0.9", "thresholds.toml [cnnn]: unknown model name 'cnnn' — known models: cnn,"),
    ("[cnn.profile.cpu]\nmax_latency = 1", "thresholds.toml [cnn.profile.cpu]: unknown key 'max_latency'"),
])
def test_config_errors_name_file_table_key(pytester, body, expected):
    pytester.makefile(".toml", thresholds=body)
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()


def test_profile_override_applies(centroid_project):
    centroid_project.makeconftest(REGISTER_BY_DECORATOR)
    centroid_project.makefile(".toml", thresholds='''
        [models.centroid]
        allow_cpu_fallback = true   # a CPU model under a forced GPU profile
        [centroid]
        min_accuracy = 0.99
        [centroid.profile.cpu]
        min_accuracy = 0.1
    ''')
    centroid_project.makepyfile(test_bench=ACCURACY_TESTS)
    run(centroid_project, "--sketch-models=centroid", "-k", "test_accuracy").assert_outcomes(passed=1)
    run(centroid_project, "--sketch-models=centroid", "-k", "test_accuracy",
        "--sketch-device=gpu-large").assert_outcomes(failed=1)
