"""The CI files: valid workflows, and the README's commands are what CI and the workflows run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
README = (REPO / "README.md").read_text()


def readme_command(marker: str) -> str:
    block = README.split(marker, 1)[1]
    return re.search(r"```bash\n(.+?)\n```", block, re.S).group(1).strip()


def test_workflows_parse_and_have_jobs():
    assert {p.name for p in WORKFLOWS} == {"tests.yml", "benchmarks.yml"}
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["jobs"] and (True in workflow or "on" in workflow)  # YAML 1.1 reads `on:` as True


def test_workflows_match_the_github_schema():
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which(
        "check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema not installed (pip install -e '.[dev]')")
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    command = readme_command("**Run the test suite**")
    ci = (REPO / ".ci" / "run").read_text()
    for step in command.split(" && "):
        assert step.strip() in ci, step
    main = readme_command("**Run the benchmarks**").split(" && ")
    assert 'pip install -q -c constraints.txt -e ".[all]"' in ci and main[-1] in ci  # command 1 too, first
    assert ci.index(main[-1]) < ci.index('python -m pytest tests/')
    assert 'pip install -q -c constraints.txt ".[onnx]"' in ci and "--sketch-models=onnx" in ci
    tests_yml = (REPO / ".github" / "workflows" / "tests.yml").read_text()
    assert 'pip install -c constraints.txt -e ".[dev]"' in tests_yml
    assert command.split(" && ")[-1] in tests_yml  # the same pytest call


def test_benchmarks_workflow_runs_the_main_job_with_every_report():
    main = readme_command("**Run the benchmarks**")
    assert main.endswith("pytest benchmarks/ --sketch-models=cnn,mobilenet")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    steps = " ".join(step.get("run", "") for step in workflow["jobs"]["cpu"]["steps"])
    assert len(workflow["jobs"]["cpu"]["strategy"]["matrix"]["include"]) >= 2  # one job per runner kind
    for flag in ("--sketch-json", "--sketch-html", "--sketch-report-dir", "--sketch-baseline", "GITHUB_STEP_SUMMARY",
                 "pip install -c constraints.txt"):
        assert flag in steps, flag
    baseline = re.search(r"--sketch-baseline=(\S+)", steps).group(1)
    assert (REPO / baseline).exists(), f"the workflow's baseline {baseline} is not committed"
    assert workflow["jobs"]["cpu"]["timeout-minutes"] <= 15


def test_the_browser_models_have_their_matrix_entry():
    """Chromium, its driver and the vendored TF.js are installed before the browser models run, and their
    reports join the merge."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    job = workflow["jobs"]["browser"]
    steps = " ".join(step.get("run", "") for step in job["steps"])
    models = {m for entry in job["strategy"]["matrix"]["include"] for m in entry["models"].split(",")}
    assert {"mobilenet", "mobilenet-browser", "mobilenet-wasm"} <= models
    for needed in ("chromium chromium-driver", "python scripts/vendor_tfjs.py", "--sketch-json=reports/results.json"):
        assert needed in steps, needed
    assert steps.index("vendor_tfjs.py") < steps.index("pytest benchmarks/")
    assert "browser" in workflow["jobs"]["merge"]["needs"]


@pytest.mark.slow
def test_benchmarks_workflow_step_runs_locally(tmp_path):
    """The workflow's benchmark command, same flags and order, on one shipped model (onnx): its baseline, A/B,
    history and report options together. Its LoadGen scenarios, parity pass and ratios to the calibration network
    are left out (-k): they add 70 s here and have their own tests (test_served, test_compliance, test_comparisons,
    test_speed_verdicts)."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    run = next(s["run"] for s in workflow["jobs"]["cpu"]["steps"] if "pytest benchmarks/" in s.get("run", ""))
    command = run.split("pytest benchmarks/", 1)[1].replace("\\\n", " ").replace('"$MODELS"', "onnx")
    command = command.replace("reports/", f"{tmp_path}/reports/").replace("=reports", f"={tmp_path}/reports")
    command = command.replace("=baseline-models", f"={REPO}/models")  # this branch's files stand in for main's
    command = command.replace("${{ matrix.name }}", "cpu-x64").replace("${{ github.base_ref || 'main' }}", "main")
    command = command.replace("=history/", f"={tmp_path}/history/")
    (tmp_path / "reports").mkdir()
    args = [a for a in command.split() if a]
    result = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", *args, "-p", "no:cacheprovider",
                             "-k", "not loadgen and not parity and not relative_speed"],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    for name in ("results.json", "report.html", "summary.md", "benchmark.json"):
        assert (tmp_path / "reports" / name).exists(), name
    assert "compared with the baseline" in result.stdout
    assert "p50 latency @1 (ms), same run" in result.stdout  # latency judged side by side, not against a record
    assert "history: run added to" in result.stdout and (tmp_path / "history" / "cpu-x64.db").exists()


def _step(job: str, words: str) -> str:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "benchmarks.yml").read_text())
    return next(s["run"] for s in workflow["jobs"][job]["steps"] if words in s.get("run", ""))


@pytest.mark.slow
def test_merge_job_runs_locally_on_three_real_runs(tmp_path):
    """Three runs as three matrix jobs would upload them (serial, -n 2, one thread), then the merge job's
    own commands: one report with every model once per machine, a gate, and the step summary."""
    config = tmp_path / "thresholds.toml"
    config.write_text("[onnx]\nmin_accuracy = 0.8\n[onnx-int8]\nmin_accuracy = 0.8\n")
    runs = {"cpu-x64": ["--sketch-models=onnx"], "cpu-xdist": ["--sketch-models=onnx-int8", "-n", "2"],
            "cpu-one-thread": ["--sketch-models=onnx", "--sketch-threads=1", "-k", "accuracy or latency"]}
    for name, args in runs.items():
        (tmp_path / "artifacts" / name).mkdir(parents=True)
        done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", *args, f"--sketch-config={config}",
                               "--sketch-samples-per-category=20", "--sketch-latency-budget=0.1",
                               "--sketch-batch-sizes=1,16", "-p", "no:cacheprovider",
                               f"--sketch-json={tmp_path}/artifacts/{name}/results.json"],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:]
    merge = _step("merge", "sketchbench merge").replace(". .venv/bin/activate", "")
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GITHUB_STEP_SUMMARY": str(summary)}
    result = subprocess.run(["bash", "-ec", merge + "\n" + _step("merge", "GITHUB_STEP_SUMMARY")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert len(merged["benchmark_metadata"]["merged_from"]) == 3
    assert len(merged["model_results"]) == 2  # onnx (two runs, one machine: once) and onnx-int8
    assert "merged from 3 runs on 1 machine(s)" in summary.read_text()
    assert (tmp_path / "merged" / "report.html").exists()
