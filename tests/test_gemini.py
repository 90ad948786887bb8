"""The gemini plugin on the real google-genai client, pointed at a local fake server (no internet here)."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from fake_gemini import FakeGemini, answers_for

from conftest import REPO, run_options
from pytest_sketchbench.data import subsample
from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.models.gemini_model import GeminiModel

KEY = "fake-gemini-key-0123456789abcdefghij"  # not a real key: redaction is checked on it


@pytest.fixture
def small(bundled):
    return subsample(bundled, 2)  # 46 drawings


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)


def run_model(dataset, fake, **config):
    model = GeminiModel("gemini", {"base_url": fake.base_url, "requests_per_minute": 60000,
                                   "backoff_initial_s": 0.01, **config})
    model.import_runtime()
    model.load()
    model.before_accuracy_pass(dataset)
    predicted = model.to_labels(model.infer(model.prepare(dataset.images)))
    return predicted, model.extra_results()


def test_correct_answers_and_api_figures(small, key):
    with FakeGemini(answers_for(small)) as fake:
        predicted, api = run_model(small, fake)
    assert np.array_equal(predicted, small.labels)
    assert api["success_rate"] == 1.0 and api["invalid"] == 0 and api["requests"] == len(small)
    assert api["tokens_in"] == 270 * len(small) and api["estimated_cost_usd"] > 0
    assert api["median_server_ms"] is not None and api["median_network_ms"] is not None
    assert fake.api_keys == {KEY} and fake.paths[0].endswith("/models/gemini-2.5-flash:generateContent")


def test_wrong_answers_count_as_wrong(small, key):
    with FakeGemini(answers_for(small), behaviour="wrong") as fake:
        predicted, api = run_model(small, fake)
    assert not np.any(predicted == small.labels) and api["invalid"] == 0


@pytest.mark.parametrize("behaviour", ["malformed", "outside"])
def test_invalid_answers_are_tallied_not_crashed(small, key, behaviour):
    with FakeGemini(answers_for(small), behaviour=behaviour) as fake:
        predicted, api = run_model(small, fake)
    assert (predicted == -1).all() and api["invalid"] == len(small) and api["invalid_rate"] == 1.0


def test_retry_then_success(small, key):
    with FakeGemini(answers_for(small), behaviour="429", fail_times=3) as fake:
        predicted, api = run_model(small, fake, concurrency=1)
    assert np.array_equal(predicted, small.labels)
    assert api["retries"] == 3 and api["rate_limited"] == 3 and api["requests"] == len(small) + 3


def test_retry_exhaustion_fails_the_drawing_only(small, key):
    with FakeGemini(answers_for(small), behaviour="500", fail_times=10**6) as fake:
        predicted, api = run_model(small, fake, max_retries=2, concurrency=2)
    assert (predicted == -1).all() and api["failed"] == len(small) and api["retries"] == 2 * len(small)
    assert api["last_error"] and KEY not in api["last_error"]


def test_timeout_is_retried_and_counted(small, key):
    tiny = subsample(small, 1)
    with FakeGemini(answers_for(tiny), delay_s=1.0) as fake:
        predicted, api = run_model(tiny, fake, timeout_s=0.2, max_retries=1, concurrency=8)
    assert (predicted == -1).all() and api["timeouts"] >= len(tiny)


@pytest.mark.alone  # wall-clock: the request rate seen at the server (a busy host bunched the arrivals)
def test_rate_limit_is_honoured(small, key):
    tiny = subsample(small, 1)  # 22 drawings at 600/min: at least 2.1 s
    with FakeGemini(answers_for(tiny)) as fake:
        started = time.monotonic()
        model = GeminiModel("gemini", {"base_url": fake.base_url, "requests_per_minute": 600, "concurrency": 8})
        model.import_runtime()
        model.load()
        model.before_accuracy_pass(tiny)
        model.infer(model.prepare(tiny.images))
        elapsed = time.monotonic() - started
    # the median gap between arrivals at the server: the mean over first-to-last is shortened by a late first
    # request (CI: the first connection 150 ms late made 21 gaps look like 646/min); one late arrival moves two
    # gaps of 21, and a client sending even 10 % too fast moves them all
    gaps = np.diff(sorted(fake.request_times))
    median_rpm = 60.0 / float(np.median(gaps))
    assert elapsed >= 2.0 and median_rpm <= 600 * 1.05, (elapsed, median_rpm, gaps)


def test_budget_cap_refuses_before_sending(small, key):
    with FakeGemini(answers_for(small)) as fake:
        model = GeminiModel("gemini", {"base_url": fake.base_url, "max_requests": 10})
        model.import_runtime()
        model.load()
        with pytest.raises(SketchBenchError, match=r"46 drawings exceed the request budget max_requests=10 — "
                                                   r"use --sketch-samples-per-category=1"):
            model.before_accuracy_pass(small)
    assert fake.request_times == []


def test_budget_cap_counts_retries(small, key):
    with FakeGemini(answers_for(small), behaviour="500", fail_times=10**6) as fake:
        predicted, api = run_model(small, fake, max_requests=len(small) + 5, concurrency=1)
    assert len(fake.request_times) == len(small) + 5 and api["not_sent"] > 0 and (predicted == -1).all()


def test_no_key_is_unavailable_with_a_how_to(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    model = GeminiModel("gemini", {})
    with pytest.raises(ModelUnavailable, match=r"no API key in \$GEMINI_API_KEY — export GEMINI_API_KEY="):
        model.load()


def test_bad_mode_is_rejected():
    with pytest.raises(SketchBenchError, match="mode must be 'rest' or 'live'"):
        GeminiModel("gemini", {"mode": "grpc"})


def _gemini_project(pytester, fake, extra: str = ""):
    pytester.makefile(".toml", thresholds=f'''
        [models.gemini]
        base_url = "{fake.base_url}"
        requests_per_minute = 60000
        {extra}
        [gemini]
        min_accuracy = 0.9
    ''')
    for name in ("test_accuracy", "test_latency", "test_throughput", "test_resources"):
        pytester.copy_example(str(REPO / "benchmarks" / f"{name}.py"))


def test_benchmarks_run_gemini_like_any_model_and_never_leak_the_key(pytester, small, key, tmp_path):
    with FakeGemini(answers_for(small)) as fake:
        _gemini_project(pytester, fake)
        result = pytester.runpytest(*run_options(2), "--sketch-models=gemini", "-rs", "-v",
                                    f"--sketch-json={tmp_path}/r.json", f"--sketch-html={tmp_path}/r.html",
                                    f"--sketch-report-dir={tmp_path}/dir", f"--junitxml={tmp_path}/junit.xml")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("passed", 0) + outcomes.get("measured", 0) >= 5, outcomes
    result.stdout.fnmatch_lines(["*top-5 accuracy is not applicable*", "*batch 32 latency is not applicable*"])
    import json

    report = json.loads((tmp_path / "r.json").read_text())["model_results"]["gemini"]
    assert report["accuracy_results"]["accuracy"] == 1.0 and report["accuracy_results"]["top5_accuracy"] is None
    assert report["api_results"]["success_rate"] == 1.0 and report["timing_results"]["1"]["timer"] == "api-requests"
    outputs = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(outputs) >= 6
    for path in outputs:
        assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in result.stdout.str() + result.stderr.str()


def test_benchmarks_skip_gemini_without_a_key(pytester, small, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with FakeGemini(answers_for(small)) as fake:
        _gemini_project(pytester, fake)
        result = pytester.runpytest(*run_options(2), "--sketch-models=gemini", "-rs")
    assert result.parseoutcomes().get("skipped", 0) >= 5 and fake.request_times == []
    result.stdout.fnmatch_lines(["*no API key in $GEMINI_API_KEY — export GEMINI_API_KEY=<your key>*"])


def test_live_api_session_over_tls(small, key, tmp_path):
    """The Live API path: one websocket session (text modality), each drawing one turn."""
    from fake_gemini_live import FakeGeminiLive

    tiny = subsample(small, 1)
    with FakeGeminiLive(answers_for(tiny), tmp_path) as fake:
        predicted, api = run_model(tiny, fake, mode="live", ca_file=str(fake.cert))
    assert np.array_equal(predicted, tiny.labels) and fake.turns == len(tiny)
    assert fake.setups[0]["setup"]["model"] == "models/gemini-2.5-flash"
    assert fake.setups[0]["setup"]["generationConfig"]["responseModalities"] == ["TEXT"]
    assert fake.api_keys == {KEY} and api["mode"] == "live" and api["tokens_in"] == 260 * len(tiny)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["rest", "live"])
def test_a_dead_endpoint_never_prints_the_key_under_any_traceback_setting(pytester, small, key, tmp_path, mode):
    """The live connect runs outside the retries: its failure must still be our one redacted line, raised from
    None, so that google-genai's frames (whose locals hold the key) never reach pytest's printer."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    class Dead:
        base_url = f"http://127.0.0.1:{port}"

    _gemini_project(pytester, Dead, f'mode = "{mode}"\nmax_retries = 0\ntimeout_s = 2')
    result = pytester.runpytest(*run_options(1), "--sketch-models=gemini", "-l", "-v", "--tb=long", "-rA",
                                f"--junitxml={tmp_path}/junit.xml", f"--html={tmp_path}/report.html",
                                "--self-contained-html", f"--sketch-json={tmp_path}/r.json")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) >= 1, outcomes  # the accuracy pass could not run
    printed = result.stdout.str() + result.stderr.str()
    assert "gemini" in printed and KEY not in printed
    # the failed accuracy pass is asked for once: every later test gets its line, no test asks the dead server again
    assert set(re.findall(r"none of its (\d+) requests", printed)) <= {"23"}, printed[-2000:]  # one drawing a category
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path


def test_zero_requests_in_flight_is_a_config_error_not_a_hang():
    for key, value in (("concurrency", 0), ("max_requests", 0), ("max_retries", -1), ("concurrency", 1.5)):
        with pytest.raises(SketchBenchError, match=f"{key} must be a whole number"):
            GeminiModel.validate_config({key: value})


@pytest.mark.parametrize("mode", ["rest", "live"])
def test_an_api_model_that_never_answers_is_bounded_by_its_stage_deadline(pytester, small, key, tmp_path, mode):
    """An endpoint that accepts the connection and never answers, with a 10-minute request timeout: the accuracy
    pass ends at stage_timeout_s, recorded on the model, and the run goes on to its reports."""
    import json
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the kernel's backlog; nobody ever reads them

        class Silent:
            base_url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        _gemini_project(pytester, Silent, f'mode = "{mode}"\ntimeout_s = 600\nstage_timeout_s = 3')
        started = time.monotonic()
        result = pytester.runpytest(*run_options(1), "--sketch-models=gemini",
                                    f"--sketch-json={tmp_path}/r.json")
        elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["gemini"]
    assert record["status"] == "error" and any("did not finish within 3 s (timed out) — raise [models.gemini] "
                                               "stage_timeout_s" in e for e in record["errors"]), record
    assert result.ret == 1


def test_the_default_stage_deadline_covers_the_request_budget():
    # 1000 requests at 60 a minute, then 5 tries of 30 s each with 30 s back-offs, and a minute
    assert GeminiModel.stage_deadline_s({}) == 1000 + 5 * 60 + 60
    assert GeminiModel.stage_deadline_s({"max_requests": 10, "requests_per_minute": 600}) == 1 + 300 + 60
    assert GeminiModel.stage_deadline_s({"stage_timeout_s": 5}) == 5
    with pytest.raises(SketchBenchError, match="stage_timeout_s = 0 is not a positive number"):
        GeminiModel.validate_config({"stage_timeout_s": 0})
