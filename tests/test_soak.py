"""A soak: one load held for ``soak_s``, windows of p50/p99, errors, both sides' RSS and CPU, and the trends
across windows judged with intervals. The leaking server is ``scripts/fault_proxy.py --leak`` in front of a
stand-in v2 server; ``scripts/measure_soak.py`` runs the 10-minute soak of the real MLServer."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import textwrap

import pytest
from fake_v2_server import FakeV2Server

from conftest import REPO, run_options, served_table
from pytest_sketchbench.soak import ResourceSample, soak_verdicts, trend, window_table, windows


@contextlib.contextmanager
def leaking_proxy(upstream: str):
    """``scripts/fault_proxy.py --leak`` as a process of its own, on a free port; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(REPO / "scripts" / "fault_proxy.py"), "--upstream", upstream,
                                "--leak", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert "fault proxy on" in process.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _rows(p99_growth_ms: float, rss_growth_mb: float, count: int = 10) -> list[dict]:
    answered = [(t / 10, 0.005 + (t / 10) / 100 * p99_growth_ms / 1000 * (1 + (t % 7) / 50)) for t in range(1000)]
    resources = [ResourceSample(t * 10.0, 100.0, 50.0, 200.0 + t * rss_growth_mb / count, 30.0)
                 for t in range(1, count + 1)]
    return windows(answered, [55.0], resources, 100.0, count)


def test_windows_hold_each_answer_once_and_the_failure_where_it_happened():
    rows = _rows(0, 0)
    assert sum(r["requests"] for r in rows) == 1001 and rows[5]["error_rate"] == pytest.approx(1 / 101)
    assert all(r["error_rate"] == 0 for i, r in enumerate(rows) if i != 5)
    assert len(window_table(rows)) == 11 and "server MB" in window_table(rows)[0]


def test_a_rising_p99_and_a_growing_server_fail_and_a_flat_run_passes():
    table = {"max_p99_drift": 0.2, "max_memory_growth_mb": 5}
    for growth_ms, rss_mb, expected in ((0, 0, [True, True]), (10, 50, [False, False])):
        rows = _rows(growth_ms, rss_mb)
        soak = {"p99_trend": trend(rows, "p99_ms", 100.0), "server_rss_trend": trend(rows, "server_rss_mb", 100.0)}
        verdicts = soak_verdicts("m", "m soak", soak, table)
        assert [v[3] for v in verdicts] == expected, verdicts
    assert "server RSS grew +" in verdicts[1][4] and "> max_memory_growth_mb 5 MB" in verdicts[1][4]


def test_too_few_windows_is_inconclusive_not_a_pass():
    (verdict,) = soak_verdicts("m", "m", {"p99_trend": None, "server_rss_trend": None}, {"max_p99_drift": 0.1})
    assert verdict[3] is None


def test_soak_needs_a_load_to_hold(tmp_path):
    from pytest_sketchbench.config import load_config
    from pytest_sketchbench.errors import SketchBenchError

    (tmp_path / "t.toml").write_text("[m.loadgen]\nsoak_s = 60\n")
    with pytest.raises(SketchBenchError, match="soak_s needs server_target_qps"):
        load_config(tmp_path / "t.toml")


@pytest.mark.slow  # an 8 s soak through the proxy
def test_a_leaking_server_fails_max_memory_growth_and_the_windows_are_printed(pytester):
    # the leaking proxy in its own process, as a leaking server would be: inside this test process, a heap with
    # room freed by earlier tests takes the leak without growing (seen: +0.4 MB for 700 kept answers)
    with FakeV2Server("ok") as server, leaking_proxy(server.url) as proxy_url:
        pytester.makefile(".toml", thresholds=served_table(proxy_url, concurrency=4) + textwrap.dedent("""
            [served.loadgen]
            server_target_qps = 100
            server_max_p99_ms = 2000
            soak_s = 8
            soak_windows = 8
            max_memory_growth_mb = 1
            accuracy = false
        """))
        pytester.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
        result = pytester.runpytest_subprocess(*run_options(10), "--sketch-models=served", "-k", "Soak",
                                               f"--sketch-json={pytester.path}/r.json", timeout=120)
    assert result.ret == 1, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*served LoadGen Soak at 100 QPS for 8 s: p99 * ms, *: server RSS grew +* MB over "
                                 "the soak (95% CI +* to +* MB, 8 windows) > max_memory_growth_mb 1 MB*",
                                 "*window (s)   requests   p50 ms   p99 ms*"])
    soak = json.loads((pytester.path / "r.json").read_text())["model_results"]["served"]["loadgen"]["Soak"]["soak"]
    assert soak["server_measured"] and len(soak["windows"]) == 8
