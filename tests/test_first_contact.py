"""What a new user meets first (issue #30's "smaller things"): each mistake is one line before any test runs,
naming the fix; an ad-hoc model comes from the command line; one model is not 'the best' of anything."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import REPO, run_options

FAST = run_options(5, budget=0.02, batch_sizes="1")
NO_TENSORFLOW = textwrap.dedent('''
    import sys

    class HideTensorFlow:  # an ONNX-only install, as far as imports can tell
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, HideTensorFlow())
''')


def test_the_default_model_without_tensorflow_is_one_line_naming_what_to_run(pytester):
    pytester.makeconftest(NO_TENSORFLOW)
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest_subprocess(f"--sketch-models-dir={REPO / 'models'}", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("ERROR: model 'cnn': its runtime needs tensorflow, which is not installed — pip install "
            "'pytest-sketchbench[keras]', or pick a model this install can run: --sketch-models=onnx,onnx-int8,torch"
            in result.stderr.str())
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_wrong_model_path_in_the_config_is_one_line_before_any_test(pytester):
    pytester.makefile(".toml", thresholds='[models.mine]\npath = "exports/mine.onnx"\n')
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest("--sketch-models=mine", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*model 'mine': file not found: {pytester.path / 'exports' / 'mine.onnx'} (from "
                                 f"{pytester.path / 'thresholds.toml'}) — fix the path; a relative path is relative "
                                 "to the file it is written in*"])
    assert "models/README.md" not in result.stderr.str()


def test_an_unknown_model_where_no_config_was_found_says_so(pytester):
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest("--sketch-models=mine", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert ("unknown model name(s): mine — available: cnn, mobilenet, onnx, onnx-int8, torch, tflite, tflite-int8, "
            f"mobilenet-browser, mobilenet-wasm, gemini (or 'all'); no thresholds.toml at {pytester.path}, so no "
            "[models.*] table was read"
            in result.stderr.str())


def test_an_unknown_device_is_a_usage_error_not_a_gpu_problem(pytester):
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest("--sketch-models=onnx", "--sketch-device=tpu", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sketch-device: 'tpu' is neither a device nor a hardware profile — use one of "
                                 "cpu, gpu, gpu-small, gpu-large*"])
    assert "GPU" not in result.stderr.str()


def test_an_ad_hoc_model_from_the_command_line_is_measured_and_compared(pytester):
    exports = pytester.mkdir("exports")
    (exports / "v7.onnx").write_bytes((REPO / "models" / "cnn.onnx").read_bytes())
    (exports / "v7.classes.json").write_text((REPO / "models" / "cnn.classes.json").read_text())
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    pytester.makefile(".toml", thresholds="[onnx]\nmin_accuracy = 0.5\n")
    result = pytester.runpytest_subprocess(f"--sketch-models-dir={REPO / 'models'}",
                                           "--sketch-models=onnx,v7=exports/v7.onnx",
                                "--sketch-json=r.json", *FAST)
    assert result.ret == 0, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["sketchbench: v7: no limits in the config — measured, not gated"])
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["model_results"]["v7"]["status"] == "measured"
    assert report["model_results"]["v7"]["model_info"]["file"] == str(exports / "v7.onnx")
    pair = next(p for p in report["comparison_analysis"]["pairs"] if {p["a"], p["b"]} == {"onnx", "v7"})
    assert pair["mcnemar_p"] == 1.0  # the same network: McNemar finds no difference


@pytest.mark.parametrize("entry, problem", [("v7=", "'v7=' is not name=path"),
                                            ("onnx=exports/x.onnx", "reuses the name of an existing model")])
def test_a_malformed_ad_hoc_entry_is_a_usage_error(pytester, entry, problem):
    pytester.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = pytester.runpytest(f"--sketch-models={entry}", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str()


def test_one_model_is_not_called_the_best_of_anything(centroid_project, tmp_path):
    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest("--sketch-models=centroid", f"--sketch-html={tmp_path}/r.html",
                                        f"--sketch-report-dir={tmp_path}", *FAST)
    page = (tmp_path / "r.html").read_text()
    assert "one model in this run: nothing to compare it with" in page and "fastest:" not in page
    assert "**Best accuracy:**" not in (tmp_path / "summary.md").read_text()
    assert result.ret == 0


def test_the_accuracy_vs_latency_chart_keeps_every_label_readable():
    """Tick labels do not overlap and every model's label lies inside the axes (a label at the right edge or
    the log axis' minor labels used to collide or be cut off)."""
    from pytest_sketchbench.report.charts import pyplot, scatter_figure

    plt = pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    points = [("cnn", 2.48, 0.908), ("mobilenet", 2.9, 0.8835), ("onnx", 0.45, 0.908),
              ("onnx-int8-with-a-long-name", 0.19, 0.9069), ("torch", 1.51, 0.908), ("tflite", 1.1, 0.908)]
    figure = scatter_figure(points, plt)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    ticks = [label.get_window_extent(renderer) for label in axis.get_xticklabels() + axis.get_xminorticklabels()
             if label.get_text() and label.get_visible()]
    assert ticks and not any(a.overlaps(b) for i, a in enumerate(ticks) for b in ticks[i + 1:])
    inside = axis.get_window_extent(renderer)
    for text in axis.texts:
        box = text.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, \
            text.get_text()
    plt.close(figure)


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs two usable cores")
def test_the_parallel_header_counts_the_cores_the_workers_get(centroid_project):
    """--sketch-threads used to pin the xdist controller (which runs no test) to one core before the header
    counted the cores: '2 workers share 1 cores' beside workers on cores [0] and [1]."""
    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest_subprocess("--sketch-models=centroid", "-n", "2", "--sketch-threads=1",
                                                   "--sketch-json=r.json", *FAST)
    result.stdout.fnmatch_lines(["sketchbench: parallel: 2 workers, 1 dedicated core(s) each*"])
    assert "share" not in result.stdout.str()
    placement = json.loads((centroid_project.path / "r.json").read_text())["model_results"]["centroid"]["parallel"]
    assert len(placement["cores"]) == 1 and not placement["shared_cores"]
