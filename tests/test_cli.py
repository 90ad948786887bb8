"""The ``sketchbench`` command on real JSON reports: merge runs, compare two runs like ``--sketch-baseline``,
re-render a report — exit codes that a CI job can gate on, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, run_options

CONFTEST = textwrap.dedent('''
    import os
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    options = {"weights": "centroid.npz"}
    if os.environ.get("DEGRADE"):
        options["degrade"] = int(os.environ["DEGRADE"])
    register_model("centroid", **options)(CentroidModel)
    register_model("other", weights=os.environ.get("OTHER_WEIGHTS", "centroid.npz"), scale=5.0)(CentroidModel)
    register_model("third", weights="centroid.npz", scale=2.0)(CentroidModel)
''')


REPORTS = REPO / "tests" / "data" / "golden" / "cli"  # real runs, made by scripts/make_cli_reports.py


def sketchbench(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_sketchbench.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(centroid_project):
    centroid_project.makeconftest(CONFTEST)
    for name in ("test_accuracy.py", "test_latency.py", "test_baseline.py", "test_resources.py"):
        centroid_project.copy_example(str(REPO / "benchmarks" / name))
    return centroid_project


def run(project, *args, env=None):
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        return project.runpytest_subprocess(*run_options(30, budget=0.2, batch_sizes="1"), *args)
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.mark.slow
def test_compare_reproduces_the_baseline_gate_verdicts(project, tmp_path):
    base = tmp_path / "base.json.gz"
    run(project, "--sketch-models=centroid", f"--sketch-save-baseline={base}", f"--sketch-json={tmp_path}/a.json")
    gated = run(project, "--sketch-models=centroid", f"--sketch-baseline={base}", f"--sketch-json={tmp_path}/b.json",
                env={"DEGRADE": "4"})
    assert gated.ret == 1
    expected = {(r["metric"], r["verdict"]) for r in
                json.loads((tmp_path / "b.json").read_text())["comparison_to_baseline"]["rows"]
                if "same run" not in r["metric"]}
    result = sketchbench("compare", tmp_path / "a.json", tmp_path / "b.json", "--json", tmp_path / "rows.json",
                         cwd=project.path)  # no thresholds.toml there: the defaults, as the gate had
    assert result.returncode == 1, result.stdout + result.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert {(r["metric"], r["verdict"]) for r in rows} == expected
    regressions = sum(verdict == "regression" for _, verdict in expected)
    assert ("accuracy", "regression") in expected and f"{regressions} gated regression(s)" in result.stdout
    same = sketchbench("compare", tmp_path / "a.json", tmp_path / "a.json", cwd=project.path)
    assert same.returncode == 0 and "no significant change" in same.stdout


def test_merge_three_runs_once_per_model_and_machine(tmp_path):
    runs = [REPORTS / f"{name}.json" for name in ("centroid", "other-xdist", "both-accuracy")]
    result = sketchbench("merge", *runs, "--json", tmp_path / "m.json", "--html", tmp_path / "m.html",
                         "--report-dir", tmp_path / "dir")
    assert result.returncode == 0, result.stdout + result.stderr
    merged = json.loads((tmp_path / "m.json").read_text())
    assert len(merged["model_results"]) == 2 and all(name.startswith(("centroid @ cpu: ", "other @ cpu: "))
                                                     for name in merged["model_results"])
    assert len(merged["benchmark_metadata"]["merged_from"]) == 3
    assert any("figures combined" in note for note in merged["benchmark_metadata"]["notes"])
    assert "speed by machine" in (tmp_path / "m.html").read_text()
    assert "merged from 3 runs" in (tmp_path / "dir" / "summary.md").read_text()
    assert "calibration calls" in result.stdout


def test_merge_flags_the_same_model_answering_differently(tmp_path):
    for machine, report in (("good", "good"), ("bad", "degraded")):  # as if from two machines
        data = json.loads((REPORTS / f"{report}.json").read_text())
        data["benchmark_metadata"]["hardware"]["cpu"]["model"] = f"CPU {machine}"
        (tmp_path / f"{machine}.json").write_text(json.dumps(data))
    result = sketchbench("merge", tmp_path / "good.json", tmp_path / "bad.json", "--json", tmp_path / "m.json")
    assert result.returncode == 1
    assert "the same model on the same drawings answered differently on" in result.stdout
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["model_results"]["centroid @ cpu: CPU bad"]["status"] == "error"


def test_compare_fails_on_a_model_that_erred_or_went_missing_naming_both(tmp_path):
    result = sketchbench("compare", REPORTS / "three-models.json", REPORTS / "other-erred.json", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("error: other erred in the new run") and "no-such-file.npz" in line for line in lines)
    assert "error: third is missing from the new run (measured in" in result.stdout
    assert "2 model(s) missing or not measured" in result.stdout


@pytest.mark.slow  # 6-9 s on the 2-core EPYC: out of the default subset (≤ 4 min)
def test_a_baseline_model_this_run_did_not_measure_fails_the_run(project, tmp_path):
    base = tmp_path / "base.json.gz"
    run(project, "--sketch-models=centroid,other", "-k", "accuracy", f"--sketch-save-baseline={base}")
    result = run(project, "--sketch-models=centroid,other", "-k", "accuracy and centroid", f"--sketch-baseline={base}")
    assert result.ret == 1  # every test that ran passed: the missing model alone fails the run
    result.stdout.fnmatch_lines([f"note: error: other is in the baseline {base} but was not measured in this run"])
    assert "failed" not in result.stdout.lines[-1]


def test_merge_keeps_every_runs_verdicts_and_refuses_another_test_set(tmp_path):
    failed, passed = REPORTS / "failed.json", REPORTS / "good.json"  # min_accuracy 0.99, then no limit
    for order in ((failed, passed), (passed, failed)):  # the later run must not overwrite the failure
        result = sketchbench("merge", *order, "--json", tmp_path / "m.json")
        assert result.returncode == 1, result.stdout
        merged = json.loads((tmp_path / "m.json").read_text())
        (record,) = merged["model_results"].values()
        assert record["status"] == "failed", order
        assert any(v["status"] == "failed" for v in record["threshold_verdicts"])
    refused = sketchbench("merge", passed, REPORTS / "fewer-drawings.json")
    assert refused.returncode == 2 and "was measured on another test set" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_report_rerenders_and_its_exit_code_follows_the_run(tmp_path):
    result = sketchbench("report", REPORTS / "failed.json", "--html", tmp_path / "again.html")
    assert result.returncode == 1 and "centroid" in result.stdout and "failed" in result.stdout
    page = (tmp_path / "again.html").read_text()
    assert "min_accuracy 0.990" in page and "<table id='summary'>" in page


@pytest.mark.parametrize(("content", "problem"), [
    (None, "file not found — pass a report written by --sketch-json"),
    ("{not json", "not readable as JSON (JSONDecodeError)"),
    ('{"a": 1}', "is not a sketchbench JSON report"),
])
def test_bad_inputs_are_one_line_usage_errors(tmp_path, content, problem):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    result = sketchbench("report", path)
    assert result.returncode == 2 and problem in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "sketchbench"
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "merge" in result.stdout and "compare" in result.stdout
