"""Judging a LoadGen run: its scenario figure, failed requests, the compliance checks, a soak and a load schedule.

A collaborator of the threshold checker, not a part of it: it needs only the few things ``Judge`` declares (the
model's record and limits, a way to record a verdict, the host audit), so the load gates grow here without
growing the checker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pytest_sketchbench.compliance import compliance_verdicts
from pytest_sketchbench.config import DEFAULT_SERVER_P99_MS, Limits
from pytest_sketchbench.load_errors import error_rate_verdicts
from pytest_sketchbench.load_shapes import knee_verdict
from pytest_sketchbench.results import ModelResult
from pytest_sketchbench.soak import soak_verdicts

# verdicts that compare wall-clock times across runs or windows: times apart also differ by the host's load
ACROSS_TIME = frozenset({"loadgen_no_caching", "loadgen_seed_robustness", "soak_p99_drift"})


class Judge(Protocol):
    """What a load gate needs from the checker it reports through."""

    model: str
    record: ModelResult
    limits: Limits

    def verdict(self, check: str, measured: Any, limit: Any, passed: bool | None, message: str,
                inconclusive: bool = False) -> None: ...

    def on_this_host(self, passed: bool, fit_host_only: bool = False) -> tuple[bool | None, str]: ...

    def all_of(self, checks: list[Callable[[], None]]) -> None: ...


def check_loadgen(judge: Judge, result, accuracy_pass: float | None = None) -> None:
    """A LoadGen run's gate: LoadGen must call the run valid (duration, query count, latency bound, early
    stopping) and its figure must meet the limit; accuracy mode must give the accuracy pass's answers.
    Failed requests are judged on their own (``load_errors``): ``max_error_rate``, overall and by kind.
    A travelling limit (``*_ratio``) was resolved from this run's own figures; on an unfit host a missed
    or INVALID run is inconclusive (the host's noise, not the model, may have missed it), and an absolute
    one (a named hardware profile's) is judged only on a fit host."""
    model = judge.model
    table = judge.record.loadgen_limits or judge.limits.loadgen
    where = f"{model} {result.describe()}"
    logs = f" — LoadGen's logs: {result.log_dir}"
    count = result.failure_count
    if result.mode == "AccuracyOnly":
        differs = result.differs_from_accuracy_pass or 0
        failed = f"; {count.describe()}" if result.any_failed else ""
        judge.verdict("loadgen_accuracy", result.accuracy, accuracy_pass, differs == 0,
                      f"{where} (accuracy pass {accuracy_pass:.4f}; {differs:,} drawings answered differently"
                      f"{failed})" + ("" if differs == 0 else logs))
        return
    load = f" at {result.target_qps:g} QPS" if result.target_qps and result.scenario == "Server" else ""
    steps = result.steps is not None  # a schedule: each step's errors are in its row and decide the knee
    verdicts = [*([] if steps else error_rate_verdicts(model, result.scenario, load, count, table)),
                *compliance_verdicts(model, f"{model} LoadGen {result.scenario}{load}", result, table),
                *soak_verdicts(model, f"{model} {result.describe()}", result.soak, table)]
    judge.all_of([*(lambda v=v: _across_time(judge, *v) for v in verdicts),
                  lambda: _knee_gate(judge, result, table, where) if steps
                  else _scenario_gate(judge, result, table, where, logs)])


def _across_time(judge: Judge, check: str, measured, limit, passed: bool | None, message: str) -> None:
    """A load verdict; one that compares wall-clock times across runs or windows (TEST04, TEST05, a soak's p99
    drift) is judged only on a fit host, pass or fail: the host's load may have slowed either run, and so hidden
    a cache or a drift as easily as made one (a caching server passed TEST04 in a CI run with 18 % steal)."""
    if passed is not None and check in ACROSS_TIME:
        passed, why = judge.on_this_host(passed, fit_host_only=True)
        message += why
    judge.verdict(check, measured, limit, passed, message, inconclusive=passed is None)


def _knee_gate(judge: Judge, result, table: dict, where: str) -> None:
    check, measured, limit, passed, message = knee_verdict(judge.model, where, result.steps,
                                                           table.get("min_knee_qps"))
    if limit is None:
        judge.verdict(check, measured, None, None, message)
        return
    judged, why = judge.on_this_host(passed, fit_host_only=True)
    judge.verdict(check, measured, limit, judged, message + why, inconclusive=judged is None)


def _scenario_gate(judge: Judge, result, table: dict, where: str, logs: str) -> None:
    key, measured, lower = {
        "SingleStream": ("single_stream_max_p90_ms", result.latency_ms(90), False),
        "MultiStream": ("multi_stream_max_p99_ms", result.latency_ms(99), False),
        "Server": ("min_server_peak_qps", result.valid_qps, True) if result.peak_qps is not None
        else ("server_max_p99_ms", result.latency_ms(99), False),
        "Offline": ("min_offline_qps", result.qps, True),
    }[result.scenario]
    limit = table.get(key, DEFAULT_SERVER_P99_MS if key == "server_max_p99_ms" else None)
    within = measured is not None and limit is not None and (measured >= limit if lower else measured <= limit)
    relation = (">=" if lower else "<=") if within else ("<" if lower else ">")
    shown = "none" if measured is None else f"{measured:.2f}"
    basis = (judge.record.loadgen_basis or {}).get(key)
    message = f"{where}: {shown} {relation} {key} {limit:g}" + (f" (= {basis})" if basis else "")
    if within and not result.valid:
        message += " — but LoadGen calls the run INVALID: raise min_query_count or min_duration_ms in " \
                   f"[{judge.model}.loadgen], or lower the load"
    passed, why = judge.on_this_host(within and result.valid, fit_host_only=basis is None)
    judge.verdict(f"loadgen_{result.scenario.lower()}" + ("_peak" if result.peak_qps is not None else ""),
                  measured, limit, passed, message + why + ("" if passed else logs), inconclusive=passed is None)


__all__ = ["Judge", "check_loadgen"]
