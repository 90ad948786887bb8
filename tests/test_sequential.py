"""The statistics behind a verdict: the sequential stopping rule, Holm's correction, the host audit's reading."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_sketchbench import host_audit
from pytest_sketchbench.stats import FALSE_DECISION_RATE, LOOKS, holm, look_confidence, sequential_ratio, side_of


def paired_lognormal(ratio: float, seed: int):
    """``more(n)`` for :func:`sequential_ratio`: n more rounds of two lognormal workloads whose true median
    ratio is ``ratio`` (a shared per-round factor, as the machine's state is shared by both sides)."""
    rng = np.random.default_rng(seed)
    a, b = [], []

    def more(n: int):
        shared = np.exp(rng.normal(0, 0.05, n))
        a.extend(ratio * shared * np.exp(rng.normal(0, 0.15, n)))
        b.extend(shared * np.exp(rng.normal(0, 0.15, n)))
        return a, b

    return more


def test_a_ratio_far_from_its_limit_is_decided_at_the_first_look():
    result, looks, rounds = sequential_ratio(paired_lognormal(2.0, 0), 60, (3.0,))
    assert looks == 1 and rounds == 60 and result["ci_high"] < 3.0
    assert result["confidence"] == pytest.approx(look_confidence())


def test_a_ratio_near_its_limit_takes_more_looks_and_may_stay_undecided():
    result, looks, rounds = sequential_ratio(paired_lognormal(2.0, 1), 60, (2.01,))
    assert looks == LOOKS and rounds == 60 * 2 ** (LOOKS - 1)  # n, 2n, 4n
    assert side_of(result["ci_low"], result["ci_high"], 2.01) == "straddles"


@pytest.mark.slow
def test_the_false_fail_rate_at_the_limit_is_within_its_promise():
    """The true ratio sits exactly at the limit in every simulated gate: the interval may only be put wholly
    above it (a false failure) at the stated rate — 1 % — give or take the simulation's own noise."""
    fails = 0
    for seed in range(300):
        result, _, _ = sequential_ratio(paired_lognormal(2.0, seed), 50, (2.0,))
        fails += result["ci_low"] > 2.0
    assert fails / 300 <= FALSE_DECISION_RATE * 3, fails  # nominal 3 of 300; 9 would be 3× the promise


def test_holm_on_a_known_example():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_adjusted_p_values_are_valid_and_keep_the_order(p_values):
    adjusted = holm(p_values)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    assert all(adjusted[i] <= adjusted[j] for i, j in zip(order, order[1:], strict=False))


@given(st.floats(0.1, 10), st.floats(0.1, 10), st.floats(0.1, 10))
def test_side_of_an_interval(a, b, bound):
    low, high = sorted((a, b))
    side = side_of(low, high, bound)
    assert side == ("above" if low > bound else "below" if high < bound else "straddles")


def test_the_audit_reads_pressure_and_names_why_a_host_is_unfit(monkeypatch):
    files = {"/proc/pressure/cpu": "some avg10=42.00 avg60=10.00 avg300=1.00 total=1\nfull avg10=0.00",
             "/proc/stat": "cpu  100 0 100 800 0 0 0 0 0 0"}
    monkeypatch.setattr(host_audit, "_read", lambda path: files.get(str(path)))
    monkeypatch.setattr(host_audit, "load_average", lambda: 7.5)
    audit = host_audit.HostAudit(cores=2)
    files["/proc/stat"] = "cpu  200 0 200 1500 0 0 0 100 0 0"  # 100 of the next 1,000 ticks stolen
    now = audit.now()
    assert now["cpu_pressure"] == pytest.approx(0.42) and now["steal_share"] == pytest.approx(0.1)
    assert now["unfit"] == ["CPU pressure: tasks waited for a core 42% of the last 10 s",
                            "host oversubscribed, load 7.5 on 2 cores", "steal 10%"]
    line = host_audit.audit_line(audit.summary({"block_spread": 0.031}))
    assert line.startswith("host unfit (CPU pressure") and "calibration spread across blocks 3.1%" in line


def test_pressure_is_a_neighbour_only_when_other_processes_used_the_cores(monkeypatch):
    """Chromium's processes or a runtime's threads waiting for each other are the run's own work: with the
    host's busy time all ours, pressure alone does not make the host unfit; a neighbour's busy time does."""
    clock, busy, own = [100.0], [1000.0], [50.0]
    monkeypatch.setattr(host_audit, "cpu_pressure", lambda: 0.8)
    monkeypatch.setattr(host_audit, "load_average", lambda: 1.0)
    monkeypatch.setattr(host_audit, "busy_seconds", lambda: busy[0])
    monkeypatch.setattr(host_audit, "own_cpu_times", lambda: {(1, 0.0): own[0]})
    monkeypatch.setattr(host_audit.time, "monotonic", lambda: clock[0])
    audit = host_audit.HostAudit(cores=2)
    assert audit.now()["unfit"] == ["CPU pressure: tasks waited for a core 80% of the last 10 s"]  # nothing to compare
    clock[0], busy[0], own[0] = 110.0, 1019.0, 68.0  # 10 s: 1.9 cores busy, 1.8 of them ours
    now = audit.now()
    assert now["foreign_cores"] == pytest.approx(0.1) and now["unfit"] == []
    assert "CPU pressure 80% (other processes 0.1 cores)" in host_audit.audit_line(now)
    clock[0], busy[0], own[0] = 120.0, 1038.0, 78.0  # the next 10 s: 1.9 busy, 1.0 ours: a neighbour took 0.9
    assert audit.now()["unfit"] == ["CPU pressure: tasks waited for a core 80% of the last 10 s; other processes "
                                    "used 0.9 cores"]


def test_own_time_counts_what_each_process_did_meanwhile():
    """A browser that quit takes its CPU time out of the tree: only growth and new processes count, so a
    shrinking tree never turns our own work into a neighbour's."""
    then = {(10, 1.0): 5.0, (11, 2.0): 40.0}  # this process, and a Chromium that has quit since
    now = {(10, 1.0): 7.0, (12, 3.0): 1.5, (11, 9.0): 0.5}  # pid 11 reused by a new process: all of it is new
    assert host_audit.own_seconds_between(then, now) == pytest.approx(2.0 + 1.5 + 0.5)


def test_a_quiet_host_is_fit(monkeypatch):
    monkeypatch.setattr(host_audit, "_read", lambda path: None)
    monkeypatch.setattr(host_audit, "load_average", lambda: 0.3)
    now = host_audit.HostAudit(cores=2).now()
    assert now["unfit"] == [] and host_audit.audit_line(now).startswith("host fit: load 0.3")
