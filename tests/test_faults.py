"""The fault suite of issue #13: each test reproduces one finding of the 109-case catalogue and checks
the plugin's answer — recorded, reported once, never green by accident, nothing lost, nothing leaked."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import REPO, assert_ran, run_options

FAULTY_PLUGIN = textwrap.dedent('''
    import time
    import numpy as np
    from pytest_sketchbench import ModelInfo, ModelPlugin, register_model

    class Faulty(ModelPlugin):
        """The centroid classifier, with one fault switched on by its config."""
        runtime = "numpy"
        options = ("weights", "fault")

        def load(self):
            data = np.load(self.config["weights"])
            self.w = data["w"]
            self.categories = [str(c) for c in data["categories"]]
            if self.config.get("fault") == "huge":  # declares a 2M x 2M RGB input: 48 TiB per batch of 1
                self.input_format = "rgb"

        def input_size(self):
            return (2**21, 2**21) if self.config.get("fault") == "huge" else (28, 28)

        def infer(self, prepared):
            fault = self.config.get("fault")
            if fault == "raise":
                raise ValueError("shapes (8,784) and (10,22) not aligned")
            if fault == "hang":
                time.sleep(3600)
            scores = prepared.reshape(len(prepared), -1) @ self.w * 20.0
            return scores[:, :10] if fault == "narrow" else scores

        def describe(self):
            return ModelInfo(self.name, self.runtime, np.__version__, "grayscale", [None, 28, 28, 1],
                             self.categories, self.config["weights"], 1000, int(self.w.size))

    for name, fault, extra in (("good", "", {}), ("boom", "raise", {}), ("narrow", "narrow", {}),
                               ("hang", "hang", {"timeout_s": 1}), ("huge", "huge", {})):
        register_model(name, weights="centroid.npz", fault=fault, **extra)(Faulty)
''')

ACCURACY_TESTS = '''
def test_accuracy(sketch_predictions, sketch_thresholds):
    sketch_thresholds.check_accuracy(sketch_predictions)

def test_latency(sketch_latency):
    sketch_latency(1)
'''
FAST = [*run_options(5, budget=0.05), "-p", "no:randomly"]


@pytest.fixture
def faulty(pytester, centroid_weights, bundled):
    weights, bias = centroid_weights
    np.savez(pytester.path / "centroid.npz", w=weights, b=bias, categories=np.array(bundled.categories))
    pytester.makeconftest(FAULTY_PLUGIN)
    pytester.makepyfile(test_sketch=ACCURACY_TESTS)
    return pytester


def _json(path) -> dict:
    return json.loads(path.read_text())["model_results"]


# -- green by accident ---------------------------------------------------------------------------
def test_a_foreign_exception_is_an_error_in_every_report_printed_once(faulty):
    result = faulty.runpytest_subprocess("--sketch-models=good,boom", *FAST, "--sketch-json=out/r.json",
                                         "--sketch-html=out/r.html", "--sketch-report-dir=out/dir")
    assert_ran(result, passed=1, failed=1, errors=1, measured=1)
    out = result.stdout.str()
    line = "model 'boom': the accuracy pass raised ValueError: shapes (8,784) and (10,22) not aligned at conftest.py:"
    assert line in out and "During handling" not in out and "Traceback" not in out
    shown = [row for row in out.splitlines() if line in row and not row.startswith(("ERROR ", "FAILED "))]
    assert len(shown) == 2  # the failing test's section and the sketchbench summary (short summary aside)
    results = _json(faulty.path / "out" / "r.json")
    assert results["boom"]["status"] == "error" and "ValueError" in results["boom"]["errors"][0]
    assert results["good"]["status"] == "measured"
    summary = (faulty.path / "out" / "dir" / "summary.md").read_text()
    boom_row = next(row for row in summary.splitlines() if row.startswith("| boom"))
    assert "💥" in boom_row and "✅" not in boom_row
    html = (faulty.path / "out" / "r.html").read_text()
    assert "shapes (8,784) and (10,22) not aligned" in html


def test_the_traceback_is_there_with_tb_long(faulty):
    result = faulty.runpytest_subprocess("--sketch-models=boom", *FAST, "--tb=long")
    result.stdout.fnmatch_lines(["*raise ValueError(\"shapes (8,784) and (10,22) not aligned\")*"])


def test_a_hanging_model_times_out_and_the_run_moves_on(faulty):
    started = time.monotonic()
    result = faulty.runpytest_subprocess("--sketch-models=hang,good", *FAST, "--sketch-json=r.json")
    assert time.monotonic() - started < 120
    assert_ran(result, passed=1, failed=1, errors=1, measured=1)
    results = _json(faulty.path / "r.json")
    assert "the accuracy pass did not finish within 1 s (timed out)" in results["hang"]["errors"][0]
    assert len(results["hang"]["errors"]) == 1  # its latency test was not run again, just reported
    result.stdout.fnmatch_lines(["*timing batch 1 not run: the accuracy pass timed out*"])


def test_outputs_narrower_than_the_categories_are_an_error(faulty):
    result = faulty.runpytest_subprocess("--sketch-models=narrow", *FAST)
    result.stdout.fnmatch_lines(["*model 'narrow': output shape (*, 10), expected (*, 2?) — the model must output one "
                                 "score per category*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_huge_declared_input_is_refused_not_allocated(faulty):
    result = faulty.runpytest_subprocess("--sketch-models=huge", *FAST)
    assert "model 'huge': declares an input of (2097152, 2097152) pixels — an input side must be 1–4096" \
        in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("toml, message", [
    ("[good.category_accuracy]\ncatt = 0.5", "[good.category_accuracy]: 'catt' is not a category of the dataset"),
    ("[good.profile.gpu-smal]\nmin_accuracy = 0.5", "[good.profile.gpu-smal]: unknown device profile 'gpu-smal'"),
])
def test_config_names_are_checked_against_the_data_and_profiles(faulty, toml, message):
    faulty.makefile(".toml", thresholds=toml)
    result = faulty.runpytest_subprocess("--sketch-models=good", *FAST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_a_baseline_file_holding_a_list_is_a_usage_error(faulty):
    (faulty.path / "bad.json.gz").write_bytes(gzip.compress(b"[1, 2, 3]"))
    result = faulty.runpytest_subprocess("--sketch-models=good", *FAST, "--sketch-baseline=bad.json.gz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "bad.json.gz: unknown baseline format 'list'" in result.stderr.str()


# -- lost or mixed reports -------------------------------------------------------------------------
def test_a_report_path_that_cannot_be_created_stops_the_run_before_any_test(faulty):
    (faulty.path / "afile").write_text("not a folder")
    result = faulty.runpytest_subprocess("--sketch-models=good", *FAST, "--sketch-json=afile/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--sketch-json=afile/r.json: cannot create the folder afile" in result.stderr.str()
    assert "passed" not in result.stdout.str()


def test_a_missing_report_folder_is_created(faulty):
    result = faulty.runpytest_subprocess("--sketch-models=good", *FAST, "--sketch-json=new/deeper/r.json")
    assert_ran(result, passed=1, measured=1)
    assert _json(faulty.path / "new" / "deeper" / "r.json")["good"]["status"] == "measured"


def test_one_failing_writer_does_not_stop_the_others(faulty):
    faulty.makepyfile(test_zz_break="def test_break():\n    import shutil\n    shutil.rmtree('html')\n"
                                    "    open('html', 'w').write('now a file')\n")
    result = faulty.runpytest_subprocess("--sketch-models=good", *FAST, "--sketch-json=r.json",
                                         "--sketch-html=html/r.html")
    assert_ran(result, passed=2, measured=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # every test passed, but a report is missing
    result.stdout.fnmatch_lines(["*error: HTML report not written to html/r.html*"])
    assert _json(faulty.path / "r.json")["good"]["status"] == "measured"


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    from pytest_sketchbench.files import StagedFiles

    target = tmp_path / "r.html"
    target.write_text("the previous good report")

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        StagedFiles().add(target, "x" * 10_000)
    assert target.read_text() == "the previous good report" and os.listdir(tmp_path) == ["r.html"]


def test_sigterm_writes_the_reports_of_what_was_measured(faulty):
    faulty.makepyfile(test_zz_wait="def test_wait():\n    import time, pathlib\n"
                                   "    pathlib.Path('waiting').touch()\n    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--sketch-models=good", *FAST, "--sketch-json=r.json"],
                               cwd=faulty.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (faulty.path / "waiting").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == pytest.ExitCode.INTERRUPTED, output
    report = json.loads((faulty.path / "r.json").read_text())
    assert report["benchmark_metadata"]["interrupted"] is True
    assert report["model_results"]["good"]["status"] == "measured"


@pytest.mark.slow
def test_two_concurrent_runs_never_mix_or_truncate_reports(faulty):
    script = REPO / "scripts" / "measure_concurrent_reports.py"
    result = subprocess.run([sys.executable, str(script), "--rounds", "4", "--project", str(faulty.path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 runs, 0 incomplete or mixed report sets" in result.stdout


@pytest.mark.slow
def test_the_xdist_controller_reports_the_real_dataset(faulty, bundled):
    result = faulty.runpytest_subprocess("--sketch-models=good,narrow", *FAST, "-n", "2", "--sketch-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    metadata = json.loads((faulty.path / "r.json").read_text())["benchmark_metadata"]
    assert metadata["test_samples"] == 5 * len(bundled.categories) and metadata["categories"] == bundled.categories


# -- secrets -------------------------------------------------------------------------------------
GEMINI_KEY = "fake-gemini-key-0123456789abcdefghij"


@pytest.mark.parametrize("fault", ["missing ca_file", "every request refused"])
def test_the_api_key_reaches_no_output_even_with_showlocals(pytester, monkeypatch, tmp_path, fault):
    from fake_gemini import FakeGemini

    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    with FakeGemini({}, behaviour="bad-key") as fake:
        ca_file = 'ca_file = "no/such/ca.pem"' if fault == "missing ca_file" else ""
        pytester.makefile(".toml", thresholds=f'''
            [models.gemini]
            base_url = "{fake.base_url}"
            requests_per_minute = 60000
            max_retries = 0
            {ca_file}
        ''')
        for name in ("test_accuracy", "test_latency"):
            pytester.copy_example(str(REPO / "benchmarks" / f"{name}.py"))
        result = pytester.runpytest_subprocess(
            "--sketch-models=gemini", *run_options(1), "-l", "--tb=long", "--showlocals", "-v", "-rA",
            f"--junitxml={tmp_path}/junit.xml", f"--html={tmp_path}/pytest-html.html", "--self-contained-html",
            f"--sketch-json={tmp_path}/r.json", f"--sketch-html={tmp_path}/r.html",
            f"--sketch-report-dir={tmp_path}/dir", f"--sketch-save-baseline={tmp_path}/baseline.json.gz")
    if fault == "every request refused":
        assert fake.api_keys == {GEMINI_KEY}  # the key did travel to the server, which echoed it back
    expected = ("[models.gemini] ca_file: cannot read no/such/ca.pem" if fault == "missing ca_file"
                else "requests was answered (last error: HTTP 400: API key not valid: [redacted])")
    assert expected in result.stdout.str()
    results = _json(tmp_path / "r.json")
    assert results["gemini"]["status"] == "error" and results["gemini"]["accuracy_results"] is None
    assert not (tmp_path / "baseline.json.gz").exists()  # a run that scored nothing is never a baseline
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"junit.xml", "pytest-html.html", "r.json", "r.html", "summary.md"} <= {p.name for p in files}
    for path in files:
        assert GEMINI_KEY not in path.read_text(errors="replace"), path
    assert GEMINI_KEY not in result.stdout.str() + result.stderr.str()
