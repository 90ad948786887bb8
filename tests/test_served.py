"""Served models (Open Inference Protocol, runtime = "v2") and MLPerf LoadGen scenarios, as a user sees them.

The good path runs against a real MLServer on 127.0.0.1 serving the shipped ``cnn.onnx`` (started by
``scripts/serve_model.py``, in its own virtual environment); the bad answers come from a stdlib server
that misbehaves on purpose (``fake_v2_server.py``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fake_v2_server import FakeV2Server

from conftest import REPO, run_options
from pytest_sketchbench import loadgen
from pytest_sketchbench.config import load_config
from pytest_sketchbench.errors import ModelOutputError, SketchBenchError
from pytest_sketchbench.models.v2_model import OpenInferenceModel

CENTROID = """
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    register_model("centroid", weights="centroid.npz")(CentroidModel)
"""
TOKEN = "served-token-0123456789abcdef"  # not a real token: redaction is checked on it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def mlserver(delay_ms: float = 0.0, log: Path | None = None, cpus: str = ""):
    """The README's server command on a free port; stopped (its whole process group) at the end."""
    port = free_port()
    out = open(log or os.devnull, "w")  # noqa: SIM115 — closed below
    process = subprocess.Popen([sys.executable, str(REPO / "scripts" / "serve_model.py"), "--port", str(port),
                                "--delay-ms", str(delay_ms), "--cpus", cpus], stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the first start also makes the server's venv
        while True:
            try:
                if httpx.get(f"{url}/v2/models/cnn/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"MLServer did not start (exit {process.poll()}); see {log}")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        out.close()


def model(url: str, **config) -> OpenInferenceModel:
    plugin = OpenInferenceModel("served", {"url": url, "model_name": "cnn",
                                           "categories": str(REPO / "models" / "cnn.classes.json"), **config})
    plugin.import_runtime()
    return plugin


# -- configuration and bad answers (a misbehaving stdlib server) ----------------------------------
@pytest.mark.parametrize("config, problem", [
    ({"url": "localhost:8080"}, "is not an http(s) URL"),
    ({"model_name": ""}, "no model_name"),
    ({"tensor_format": "protobuf"}, "tensor_format = 'protobuf'"),
    ({"concurrency": 0}, "concurrency = 0 is not a positive integer"),
    ({"headers": "Bearer x"}, "headers must be a table"),
])
def test_bad_config_is_one_line_naming_the_option(config, problem):
    with pytest.raises(SketchBenchError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        OpenInferenceModel("served", {"url": "http://127.0.0.1:1", "model_name": "cnn", **config})


def test_a_server_that_is_down_is_named_with_the_command_that_starts_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SketchBenchError) as error:
        model(url).load()
    message = str(error.value)
    assert f"readiness check: cannot reach {url}/v2/health/ready (ConnectError" in message
    assert "python scripts/serve_model.py" in message and "\n" not in message


@pytest.mark.parametrize("behaviour, error_type, problem", [
    ("500", SketchBenchError, r"inference: http://127\.0\.0\.1:\d+/v2/models/cnn/infer answered HTTP 500 "
                              r"\(runtime crashed\)"),
    ("400", SketchBenchError, r"answered HTTP 400 \(invalid tensor\)"),
    ("malformed", ModelOutputError, r"output 'probabilities' cannot be read \(ValueError"),
    ("not-json", ModelOutputError, r"answered with no JSON object \('<html>proxy error</html>'\)"),
])
def test_bad_answers_are_one_line_errors(bundled, behaviour, error_type, problem):
    with FakeV2Server(behaviour) as fake:
        plugin = model(fake.url)
        plugin.load()
        with pytest.raises(error_type, match=problem):
            plugin.predict(bundled.images[:3])


def test_a_servers_error_text_is_inert(bundled):
    """Control characters from a server never reach the terminal or the JSON: no escape can erase the error line,
    print a green '999 passed' or retitle the terminal."""
    with FakeV2Server("escapes") as fake:
        plugin = model(fake.url)
        plugin.load()
        with pytest.raises(SketchBenchError) as error:
            plugin.predict(bundled.images[:3])
    message = str(error.value)
    assert "answered HTTP 400 (bad input" in message and "999 passed" in message
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in message), repr(message)


def test_a_server_that_is_not_ready_and_a_model_it_does_not_have():
    with FakeV2Server("not-ready") as fake, pytest.raises(SketchBenchError, match="answered HTTP 503.*not ready"):
        model(fake.url).load()
    with FakeV2Server("ok") as fake, pytest.raises(SketchBenchError) as error:
        model(fake.url, model_name="nope").load()
    assert f"the server at {fake.url} has no model 'nope' (it serves: cnn) — fix model_name" in str(error.value)


def test_headers_come_from_the_environment_and_never_reach_a_message(bundled, monkeypatch):
    monkeypatch.setenv("SERVING_TOKEN", TOKEN)
    with FakeV2Server("500") as fake:
        plugin = model(fake.url, headers={"Authorization": "Bearer ${SERVING_TOKEN}"})
        plugin.load()
        with pytest.raises(SketchBenchError) as error:
            plugin.predict(bundled.images[:1])
    assert TOKEN not in str(error.value)
    monkeypatch.delenv("SERVING_TOKEN")
    with pytest.raises(SketchBenchError, match=r"headers.Authorization: \$SERVING_TOKEN is not set"):
        model(fake.url, headers={"Authorization": "Bearer ${SERVING_TOKEN}"}).load()


def with_a_served_model_whose_server_is_down(project):
    """The centroid model beside ``served``: a v2 model on a port where nothing listens."""
    project.makeconftest(CENTROID)
    project.makefile(".toml", thresholds=f"""
        [models.served]
        runtime = "v2"
        url = "http://127.0.0.1:{free_port()}"
        model_name = "cnn"
    """)


def test_a_served_model_asked_for_by_name_fails_when_its_server_is_down_and_others_still_run(centroid_project,
                                                                                            tmp_path):
    with_a_served_model_whose_server_is_down(centroid_project)
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest(*run_options(5), "--sketch-models=centroid,served",
                                        f"--sketch-json={tmp_path}/r.json")
    outcomes = result.parseoutcomes()
    assert result.ret == 1 and outcomes["errors"] >= 1 and outcomes.get("passed", 0) + outcomes.get("measured", 0) >= 1
    assert "model 'served': readiness check: cannot reach" in result.stdout.str()
    results = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert results["centroid"]["status"] == "measured" and results["served"]["status"] not in ("passed", "measured")


@pytest.mark.slow
def test_with_all_models_a_served_model_whose_server_is_down_is_left_out_of_the_side_by_side_timing(
        centroid_project):
    """`--sketch-models=all` skips a served model whose server is down; the models timed beside each other
    must leave it out too, not error (the README's baseline command on a machine without the server)."""
    with_a_served_model_whose_server_is_down(centroid_project)
    centroid_project.makepyfile(test_pairs="def test_pairs(sketch_pairwise):\n    assert sketch_pairwise == []\n")
    # its own process: each in-process run re-imports httpcore, whose errors the first run's httpx then cannot map
    result = centroid_project.runpytest_subprocess(*run_options(5), "--sketch-models=all", "-v")
    # (the built-in models error here: their files are not in this project)
    result.stdout.fnmatch_lines(["*test_pairs.py::test_pairs[[]centroid[]] PASSED*",
                                 "*test_pairs.py::test_pairs[[]served[]] SKIPPED*readiness*"],
                                consecutive=False)


# -- LoadGen: settings and its logs read back ------------------------------------------------------
@pytest.mark.parametrize("table, problem", [
    ({"server_qps": 5}, "unknown key 'server_qps'"),
    ({"server_target_qps": -1}, "must be a positive number"),
    ({"min_query_count": 1.5}, "must be a positive integer"),
    ({"accuracy": "yes"}, "must be true or false"),
    ({"server_max_p99_ms": 5}, "needs server_target_qps"),
])
def test_loadgen_tables_are_validated(tmp_path, table, problem):
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    (tmp_path / "t.toml").write_text(f"[onnx.loadgen]\n{lines}\n")
    with pytest.raises(SketchBenchError, match=problem):
        load_config(tmp_path / "t.toml", known_models=["onnx"])


def test_planned_runs_follow_the_gates_named():
    assert loadgen.planned_runs({}) == []
    assert loadgen.planned_runs({"min_offline_qps": 10, "server_target_qps": 5}) == ["Server", "Offline", "Accuracy"]
    assert loadgen.planned_runs({"min_server_peak_qps": 5, "accuracy": False}) == ["ServerPeak"]


def test_a_detail_log_is_read_into_loadgens_own_verdict(tmp_path):
    entries = [("result_validity", "INVALID"), ("early_stopping_met", False),
               ("early_stopping_result", " * Run unsuccessful.  * Processed 595 queries."),
               ("result_completed_samples_per_sec", 296.7), ("effective_target_qps", 300),
               ("effective_target_latency_ns", 5000000), ("result_99.00_percentile_latency_ns", 4696850),
               ("generic_message", "FindPeakPerformance: Found peak performance field: 238.77"),
               ("generic_message", "later message")]
    log = tmp_path / "mlperf_log_detail.txt"
    log.write_text("\n".join(":::MLLOG " + json.dumps({"key": k, "value": v}) for k, v in entries) + "\nnoise\n")
    result = loadgen.result_from_log(loadgen.read_detail_log(log), "Server", "PerformanceOnly", 2, str(tmp_path))
    assert result.p99_ms == pytest.approx(4.69685) and result.qps == 296.7 and result.peak_qps == 238.77
    assert not result.valid and result.target_latency_ms == 5.0
    assert result.describe() == ("LoadGen Server at 300 QPS: search peak 238.8 QPS, no rate confirmed valid, INVALID "
                                 "(early stopping not met: Run unsuccessful. Processed 595 queries.)")
    assert loadgen.ScenarioResult.from_dict(result.to_dict()) == result


# -- a local model under LoadGen, through pytest --------------------------------------------------
@pytest.mark.alone
def test_loadgen_scenarios_on_a_local_model_pass_and_keep_their_logs(centroid_project, tmp_path):
    centroid_project.makeconftest(CENTROID)
    centroid_project.makefile(".toml", thresholds="""
        [centroid.loadgen]
        single_stream_max_p90_ratio = 1000
        min_offline_qps_ratio = 0.001
        min_duration_ms = 300
        min_query_count = 64
    """)
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
    result = centroid_project.runpytest(*run_options(20), "--sketch-models=centroid", "-v",
                                        f"--sketch-report-dir={tmp_path}/dir", f"--sketch-json={tmp_path}/r.json")
    result.assert_outcomes(passed=3, skipped=5)  # MultiStream, Server, ServerPeak, Soak, Steps: not configured
    summary = result.stdout.str()
    assert "LoadGen SingleStream: p90" in summary and "LoadGen accuracy mode: top-1" in summary
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["centroid"]
    runs = record["loadgen"]
    assert runs["SingleStream"]["valid"] and runs["Offline"]["valid"]
    messages = " ".join(v["message"] for v in record["threshold_verdicts"])  # the travelling limits, resolved
    assert "(= 1000 × centroid's batch-1 p50" in messages and "(= 0.001 × calibration" in messages
    assert runs["Accuracy"]["differs_from_accuracy_pass"] == 0
    assert (tmp_path / "dir" / "centroid" / "loadgen" / "Offline" / "mlperf_log_summary.txt").exists()


@pytest.mark.slow
def test_a_loadgen_run_past_the_stage_deadline_ends_cleanly_and_keeps_the_results(centroid_project, tmp_path):
    """The deadline never fires inside LoadGen's callbacks (it segfaulted the session): LoadGen is told to stop
    before it, the deadline fires after LoadGen returns, and the accuracy already measured is reported."""
    centroid_project.makeconftest(CENTROID.replace('weights="centroid.npz"', 'weights="centroid.npz", timeout_s=2.5'))
    centroid_project.makefile(".toml", thresholds="""
        [centroid]
        min_accuracy = 0.1
        [centroid.loadgen]
        min_server_peak_qps = 5
        min_duration_ms = 1000
        accuracy = false
    """)
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest_subprocess(*run_options(20), "--sketch-models=centroid",
                                                   f"--sketch-json={tmp_path}/r.json", timeout=120)
    assert result.ret == 1, result.stdout.str()[-2000:]  # not -11 (SIGSEGV), not 3 (INTERNALERROR)
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["centroid"]
    assert record["accuracy_results"]["accuracy"] > 0.1
    assert any("LoadGen ServerPeak did not finish within 2.5 s (timed out)" in e for e in record["errors"]), record


def test_a_loadgen_scenario_longer_than_the_deadline_is_refused_up_front(centroid_project, tmp_path):
    centroid_project.makeconftest(CENTROID.replace('weights="centroid.npz"', 'weights="centroid.npz", timeout_s=20'))
    centroid_project.makefile(".toml", thresholds="[centroid.loadgen]\nmin_offline_qps = 5\nmin_duration_ms = 60000\n")
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
    started = time.monotonic()
    result = centroid_project.runpytest(*run_options(5), "--sketch-models=centroid", "-k", "Offline")
    assert time.monotonic() - started < 30
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]centroid.loadgen[]] min_duration_ms = 60,000 cannot finish within its stage "
                                 "deadline of 20 s*"])


# -- the real server (slow) ------------------------------------------------------------------------
def _served_project(tmp_path: Path, url: str, loadgen_table: str) -> Path:
    config = tmp_path / "thresholds.toml"
    config.write_text(textwrap.dedent(f"""
        [sketchbench]
        threads = 1
        [models.served]
        runtime = "v2"
        url = "{url}"
        model_name = "cnn"
        categories = "{REPO / 'models' / 'cnn.classes.json'}"
        concurrency = 2
        [served]
        min_accuracy = 0.85  # cnn: 0.908 on the whole split, judged here on its interval over 60 a category
        min_agreement = {{ with = "onnx", min = 1.0 }}
        max_probability_diff = {{ with = "onnx", max = 1e-5 }}
        [served.loadgen]
    """) + textwrap.dedent(loadgen_table))
    return config


def _run(tmp_path: Path, config: Path, *tests: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *tests, "--sketch-models=served,onnx", "-v",
                           "--sketch-samples-per-category=60",  # 1,380 drawings over HTTP, not 6,576
                           f"--sketch-config={config}", f"--sketch-json={tmp_path}/r.json",
                           f"--sketch-report-dir={tmp_path}/dir", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.alone
def test_served_cnn_gives_the_local_onnx_answers_and_splits_its_time(tmp_path):
    with mlserver(log=tmp_path / "server.log") as url:
        config = _served_project(tmp_path, url, """
            server_target_qps = 150
            server_max_p99_ms = 200
            min_offline_qps = 50
            min_duration_ms = 500
            min_query_count = 500  # LoadGen's early stopping needs about 460 queries for a p99 claim
        """)
        result = _run(tmp_path, config, "benchmarks/test_accuracy.py", "benchmarks/test_loadgen.py",
                      "benchmarks/test_latency.py::test_single_drawing_latency")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "parity with onnx: agreement 1.0000 (0 of 1,380 drawings differ)" in result.stdout
    assert f"served by {url} (json tensors" in result.stdout and "= server" in result.stdout
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["served"]
    split = record["served_results"]["by_batch"]["1"]
    assert 0 < split["server_p50_ms"] < split["client_p50_ms"]
    assert split["network_p50_ms"] == pytest.approx(split["client_p50_ms"] - split["server_p50_ms"])
    assert record["loadgen"]["Server"]["valid"] and record["loadgen"]["Offline"]["valid"]
    assert record["loadgen"]["Accuracy"]["differs_from_accuracy_pass"] == 0
    assert (tmp_path / "dir" / "served" / "loadgen" / "Server" / "mlperf_log_detail.txt").exists()


@pytest.mark.slow
@pytest.mark.alone
def test_a_slower_server_fails_the_p99_gate_naming_scenario_rate_and_p99(tmp_path):
    with mlserver(delay_ms=30, log=tmp_path / "server.log") as url:
        config = _served_project(tmp_path, url, """
            server_target_qps = 20
            server_max_p99_ms = 15
            min_duration_ms = 1000
            min_query_count = 20
            accuracy = false
        """)
        result = _run(tmp_path, config, "benchmarks/test_loadgen.py", "benchmarks/test_accuracy.py::test_accuracy")
    if "not judged on this host" in result.stdout:  # a busy host: the miss is inconclusive, never passed
        assert result.returncode == 0 and "INCONCLUSIVE served: served LoadGen Server at 20 QPS" in result.stdout
        return
    assert result.returncode == 1, result.stdout[-3000:]
    failure = re.search(r"served LoadGen Server at 20 QPS: p99 ([\d.]+) ms, INVALID .*: [\d.]+ > server_max_p99_ms 15 "
                        r"— LoadGen's logs: \S+", result.stdout)
    assert failure and float(failure.group(1)) > 30, result.stdout[-3000:]
    results = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert results["onnx"]["status"] in ("passed", "measured")
    assert results["served"]["accuracy_results"]["accuracy"] > 0.885


@pytest.mark.parametrize("tensor_format", ["json", "binary"])
def test_tensors_reach_the_server_exactly_and_answers_come_back_in_order(bundled, tensor_format):
    """The server's column 0 is each drawing's total ink: the batch went out unrounded, split and reassembled
    in order, as JSON or with the binary tensor extension."""
    images = bundled.images[:10]
    with FakeV2Server("ok") as fake:
        plugin = model(fake.url, tensor_format=tensor_format, max_batch_size=4, concurrency=3)
        plugin.load()
        raw = plugin.infer(plugin.prepare(images))
    ink = images.reshape(10, -1).astype(np.float32).sum(axis=1) / 255
    assert raw.shape == (10, 23) and np.allclose(raw[:, 0], ink, rtol=1e-6)
    assert sorted(int(k) for k in plugin.extra_results()["by_batch"]) == [2, 4]  # 4 + 4 + 2
    sent = fake.headers[-1]
    assert ("Inference-Header-Content-Length" in sent) == (tensor_format == "binary")


@pytest.mark.alone  # wall-clock: the size limit must trip before timeout_s=1 (a busy host made it a timeout)
@pytest.mark.parametrize("behaviour, problem", [
    ("endless", r"sent more than 64 MiB"), ("bomb", r"sent more than 64 MiB"),
    ("trickle", r"inference: no answer from .* within timeout_s=1"),
])
def test_a_body_that_never_ends_or_explodes_is_cut_off(bundled, behaviour, problem):
    """Hostile servers: an endless body, a gzip bomb (100 MiB from 100 KiB) and a byte every 0.1 s (each read
    within httpx's timeout, the whole never) end as one line within timeout_s and the size limit."""
    with FakeV2Server(behaviour) as fake:
        plugin = model(fake.url, timeout_s=1)
        plugin.load()
        started = time.monotonic()
        with pytest.raises(SketchBenchError, match=problem):
            plugin.predict(bundled.images[:1])
    assert time.monotonic() - started < 5


def test_a_slow_server_times_out_within_timeout_s(bundled):
    with FakeV2Server("slow") as fake:
        plugin = model(fake.url, timeout_s=0.2)
        plugin.load()
        with pytest.raises(SketchBenchError, match=r"inference: no answer from .* within timeout_s=0.2"):
            plugin.predict(bundled.images[:1])
