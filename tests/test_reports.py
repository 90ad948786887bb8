"""Reports as a reviewer gets them: JSON (schema + numbers), CSVs, Markdown, HTML in a real browser."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_options
from pytest_sketchbench.metrics import accuracy_report
from pytest_sketchbench.report.json_report import SCHEMA_PATH

REGISTER = textwrap.dedent('''
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    register_model("centroid", weights="centroid.npz")(CentroidModel)
    register_model("centroid2", weights="centroid.npz", scale=5.0)(CentroidModel)
''')


@pytest.fixture(scope="module")
def reports(tmp_path_factory, centroid_weights, bundled):
    """One real run of the shipped benchmark modules with every report switched on."""
    project = tmp_path_factory.mktemp("project")
    w, b = centroid_weights
    np.savez(project / "centroid.npz", w=w, b=b, categories=np.array(bundled.categories))
    from conftest import NUMPY_PLUGIN

    (project / "centroid_plugin.py").write_text(NUMPY_PLUGIN)
    (project / "conftest.py").write_text(REGISTER)
    (project / "thresholds.toml").write_text("[centroid]\nmin_accuracy = 0.99\n")
    for name in ("test_accuracy.py", "test_latency.py", "test_resources.py"):
        shutil.copy(REPO / "benchmarks" / name, project / name)
    out = project / "reports"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *run_options(15, budget=0.05, batch_sizes="1,16"),
         "--sketch-models=centroid,centroid2",
         f"--sketch-json={out}/results.json", f"--sketch-html={out}/report.html", f"--sketch-report-dir={out}",
         f"--html={out}/pytest.html", "--self-contained-html", f"--benchmark-json={out}/benchmark.json",
         "-p", "no:cacheprovider", "-v"], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # min_accuracy fails on purpose
    return out, result


def test_json_validates_against_schema_and_matches_metrics(reports, bundled):
    import jsonschema

    out, _ = reports
    report = json.loads((out / "results.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))
    from pytest_sketchbench.data import subsample

    dataset = subsample(bundled, 15)
    for name in ("centroid", "centroid2"):
        model = report["model_results"][name]
        assert model["threshold_verdicts"] and model["timing_results"]["16"]["rounds"] >= 5
    metadata = report["benchmark_metadata"]
    assert metadata["test_samples"] == len(dataset) and metadata["device_profile"] == "cpu"
    assert report["comparison_analysis"]["accuracy_ranking"] == ["centroid", "centroid2"] or \
        report["comparison_analysis"]["accuracy_ranking"] == ["centroid2", "centroid"]
    assert set(metadata["library_versions"]) >= {"python", "numpy", "pytest"}
    accuracy = report["model_results"]["centroid"]["accuracy_results"]
    assert accuracy["n_samples"] == len(dataset)
    matrix = np.array(accuracy["confusion_matrix"])
    labels_rows, predicted_cols = np.nonzero(matrix)
    labels = np.repeat(labels_rows, matrix[labels_rows, predicted_cols])
    predicted = np.repeat(predicted_cols, matrix[labels_rows, predicted_cols])
    expected = accuracy_report(None, predicted, labels, accuracy["labels"])
    for key in ("accuracy", "macro_f1", "micro_f1", "macro_precision"):
        assert accuracy[key] == pytest.approx(getattr(expected, key))


def test_benchmark_json_keeps_pytest_benchmark_compare_working(reports):
    out, _ = reports
    data = json.loads((out / "benchmark.json").read_text())
    names = {b["name"] for b in data["benchmarks"]}
    assert "test_single_drawing_latency[centroid]" in names
    extra = next(b for b in data["benchmarks"] if b["name"] == "test_single_drawing_latency[centroid]")["extra_info"]
    assert {"p95_ms", "p99_ms", "throughput_per_s"} <= set(extra)


def test_csvs_round_trip(reports):
    out, _ = reports
    report = json.loads((out / "results.json").read_text())["model_results"]["centroid"]["accuracy_results"]
    rows = list(csv.reader((out / "centroid" / "confusion.csv").open()))
    assert rows[0][1:] == report["labels"] and [r[0] for r in rows[1:]] == report["labels"]
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == report["confusion_matrix"]
    per_category = {r["category"]: r for r in csv.DictReader((out / "centroid" / "per_category.csv").open())}
    for category, row in report["per_category"].items():
        assert float(per_category[category]["f1"]) == pytest.approx(row["f1"], abs=1e-6)
        assert int(per_category[category]["support"]) == row["support"]
    results = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model"] for r in results] == ["centroid", "centroid2"]
    assert (out / "centroid" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "| centroid |" in summary and "min_accuracy" in summary


def test_terminal_summary(reports):
    _, result = reports
    assert "sketchbench summary" in result.stdout and "best:" in result.stdout  # -v shows best/worst
    assert "comparison: best accuracy:" in result.stdout


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120)


browser = pytest.mark.skipif(shutil.which("chromium") is None, reason="run tests/setup-system.sh for Chromium")


@pytest.mark.slow
@browser
@pytest.mark.parametrize("page, elements", [
    ("report.html", ["id=\"summary\"", "class=\"model-row\" data-model=\"centroid\"", "id=\"comparison\"",
                     "id=\"hardware\"", "alt=\"centroid confusion matrix\"", "alt=\"accuracy vs latency\""]),
    ("pytest.html", ["sketchbench", "test_accuracy[centroid]", "sketch-figures", "data:image/png;base64"]),
])
def test_html_opens_offline_in_chromium(reports, tmp_path, page, elements):
    out, _ = reports
    path = out / page
    html = path.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://cdn" not in html
    dom = _chromium("--dump-dom", f"file://{path}", profile=tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for element in elements:
        assert element in dom.stdout, element
    shot = tmp_path / "shot.png"
    screenshot = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", f"file://{path}",
                           profile=tmp_path / "p2")
    assert shot.exists() and shot.stat().st_size > 20000, screenshot.stderr[-2000:]
    console_errors = [line for line in dom.stderr.splitlines() + screenshot.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []


INTERRUPTING = textwrap.dedent('''
    def test_accuracy(sketch_predictions, sketch_thresholds):
        sketch_thresholds.check_accuracy(sketch_predictions)

    def test_zz_interrupt(sketch_model):
        raise KeyboardInterrupt
''')


def test_interrupted_run_leaves_valid_json(centroid_project, tmp_path):
    centroid_project.makeconftest(REGISTER)
    centroid_project.makepyfile(test_bench=INTERRUPTING)
    result = centroid_project.runpytest_subprocess(
        *run_options(5), "--sketch-models=centroid", f"--sketch-json={tmp_path}/r.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["benchmark_metadata"]["interrupted"] is True
    categories = report["benchmark_metadata"]["categories"]
    assert report["model_results"]["centroid"]["accuracy_results"]["n_samples"] == 5 * len(categories)


def test_pytest_html_rows_carry_their_figures(reports):
    """The latency tests' rows show the distribution they measured; the first accuracy row the confusion."""
    import html as html_lib
    import re

    out, _ = reports
    page = (out / "pytest.html").read_text()
    blob = json.loads(html_lib.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    images = {test_id: [e for run in runs for e in run.get("extras", []) if e.get("format_type") == "image"]
              for test_id, runs in blob["tests"].items()}
    latency_rows = [t for t in images if "test_latency_by_batch_size[centroid-" in t
                    or "test_single_drawing_latency[centroid]" in t]
    assert latency_rows and all(images[t] for t in latency_rows), {t: len(images[t]) for t in latency_rows}
    assert images[next(t for t in images if t.endswith("test_accuracy[centroid]"))]
