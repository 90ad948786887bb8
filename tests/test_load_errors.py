"""Failed requests under load are figures: counted by kind, out of the percentiles, judged with an interval.

The failures come from ``scripts/fault_proxy.py`` in front of a stand-in v2 server (``fake_v2_server.py``); the
real MLServer behind the same proxy is ``scripts/measure_error_rates.py``'s job."""

from __future__ import annotations

import json
import sys
import textwrap
from collections import Counter

import pytest
from fake_v2_server import FakeV2Server
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO, run_options, served_table
from pytest_sketchbench.config import load_config
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.load_errors import FailureCount, error_rate_verdicts, judge_rate

sys.path.insert(0, str(REPO / "scripts"))
from fault_proxy import FaultProxy  # noqa: E402


@given(requests=st.integers(1, 100_000), share=st.floats(0, 1), limit=st.floats(0, 0.99))
def test_an_error_rate_verdict_never_contradicts_its_interval(requests, share, limit):
    count = FailureCount(requests, Counter({"HTTP 503": round(requests * share)}))
    low, high = count.interval()
    assert low <= count.rate <= high
    passed = judge_rate(count, limit)
    if passed is True:
        assert high <= limit or count.failed == 0
    elif passed is False:
        assert low > limit or (limit == 0 and count.failed)
    else:
        assert low <= limit < high


def test_the_message_names_the_share_its_interval_and_the_kinds():
    count = FailureCount(24_000, Counter({"HTTP 503": 9, "timeout": 3}))
    ((check, measured, limit, passed, message),) = error_rate_verdicts(
        "served-cnn", "Server", " at 400 QPS", count, {"max_error_rate": 0.001})
    assert (check, limit, passed) == ("max_error_rate", 0.001, True) and measured == pytest.approx(0.0005)
    assert message == ("served-cnn LoadGen Server at 400 QPS: 12 of 24,000 requests failed (0.050 %, 95% CI "
                       "0.026–0.087 %): HTTP 503 ×9, timeout ×3 ≤ max_error_rate 0.100 %")


def test_without_a_limit_one_failure_fails_and_none_adds_no_verdict():
    assert error_rate_verdicts("m", "Offline", "", FailureCount(500), {}) == []
    ((_, _, _, passed, message),) = error_rate_verdicts("m", "Offline", "", FailureCount(500, Counter(timeout=1)), {})
    assert passed is False and "> max_error_rate 0.000 % (the default: none may fail)" in message


def test_per_kind_limits_are_judged_on_their_own():
    count = FailureCount(10_000, Counter({"HTTP 503": 300, "timeout": 2}))
    verdicts = error_rate_verdicts("m", "Server", "", count, {"max_error_rate": 0.5,
                                                             "max_error_rate_by_kind": {"HTTP 503": 0.01,
                                                                                        "timeout": 0.01}})
    assert [(v[0], v[3]) for v in verdicts] == [("max_error_rate", True), ("max_error_rate[HTTP 503]", False),
                                                ("max_error_rate[timeout]", True)]


@pytest.mark.parametrize(("table", "problem"), [
    ("max_error_rate = 1.5", "'max_error_rate' must be a share of requests from 0 to 1"),
    ("max_error_rate = -0.1", "'max_error_rate' must be a share of requests from 0 to 1"),
    ('max_error_rate_by_kind = { timeout = "low" }', "'max_error_rate_by_kind' must be a table of a share"),
])
def test_a_bad_error_rate_limit_is_a_one_line_config_error(tmp_path, table, problem):
    (tmp_path / "t.toml").write_text(f"[m.loadgen]\nmin_offline_qps = 1\n{table}\n")
    with pytest.raises(SketchBenchError, match=problem.replace("[", r"\[")):
        load_config(tmp_path / "t.toml")


def _served(pytester, url: str, loadgen_table: str):
    pytester.makefile(".toml", thresholds=served_table(url, timeout_s=0.5, concurrency=8) + textwrap.dedent("""
        [served.loadgen]
        accuracy = false
        min_duration_ms = 1000
        min_query_count = 500  # LoadGen's early stopping needs about 460 queries for a p99 claim
    """) + textwrap.dedent(loadgen_table))
    pytester.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
    return pytester.runpytest_subprocess(*run_options(10), "--sketch-models=served", "-k", "Server and not Peak",
                                         f"--sketch-json={pytester.path}/r.json", timeout=120)


@pytest.mark.slow  # 7 s: a LoadGen run through the proxy
@pytest.mark.alone  # wall-clock: the timeouts counted are the injected delays only while healthy requests keep 0.5 s
def test_a_server_failing_under_load_is_counted_by_kind_and_the_run_goes_on(pytester):
    with FakeV2Server("ok") as server, FaultProxy(server.url, fail=0.3, how="mix", delay_s=1.0, seed=1) as proxy:
        result = _served(pytester, proxy.url, """
            server_target_qps = 150
            server_max_p99_ms = 2000
            max_error_rate = 0.05
        """)
    assert result.ret == 1, result.stdout.str()[-3000:]
    injected = proxy.injected
    record = json.loads((pytester.path / "r.json").read_text())["model_results"]["served"]
    failures = record["loadgen"]["Server"]["failures"]
    assert failures["by_kind"] == {"HTTP 503": injected["503"], "connection reset": injected["reset"],
                                   "timeout": injected["delay"]}, (failures, injected)
    assert 0.2 < failures["failed"] / failures["requests"] < 0.4  # 30 % injected, ≥ 500 requests
    assert record["loadgen"]["Server"]["answered_p99_ms"] is not None  # the latency gate's figure: failures left out
    result.stdout.fnmatch_lines(["*served LoadGen Server at 150 QPS: p99 * ms (answered requests only; LoadGen's "
                                 "over all: p99 * ms)*"])
    result.stdout.re_match_lines([r".*served LoadGen Server at 150 QPS: [\d,]+ of [\d,]+ requests failed \(\d+\.\d %, "
                                  r"95% CI [\d.]+–[\d.]+ %\): .*HTTP 503 ×\d+.* > max_error_rate 5\.00 %"])


@pytest.mark.slow
@pytest.mark.alone  # wall-clock: every healthy request within timeout_s=0.5 (a busy host added a timeout)
def test_a_few_failures_within_the_limit_pass(pytester):
    with FakeV2Server("ok") as server, FaultProxy(server.url, fail=0.02, how="503", seed=2) as proxy:
        result = _served(pytester, proxy.url, """
            server_target_qps = 150
            server_max_p99_ms = 2000
            max_error_rate = 0.2
        """)
    assert result.ret == 0, result.stdout.str()[-3000:]
    record = json.loads((pytester.path / "r.json").read_text())["model_results"]["served"]
    verdict = next(v for v in record["threshold_verdicts"] if v["check"] == "max_error_rate")
    assert verdict["status"] == "passed" and f"{proxy.injected['503']} of" in verdict["message"]
