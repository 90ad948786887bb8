"""Failed requests under load as figures: counted by kind, kept out of the latency percentiles, judged with an
interval.

A server that drops 0.05 % of requests under load and one that drops 30 % are different verdicts, so a run under
load goes on through failures (an HTTP error status, a timeout, a reset connection, an answer that is not one
score per category) and counts them. A rate measured on N requests is an estimate: the gate passes when its
whole 95 % interval (Clopper–Pearson) lies within ``max_error_rate``, fails when the whole interval lies above,
and is inconclusive in between (too few requests to tell). A limit of 0 is exact: one failure fails.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pytest_sketchbench.errors import ModelOutputError, RequestFailed

ALL_FAILED_STOP = 50  # this many requests, every one failed: the server is down, not flaky — stop the run


def failure_kind(exc: BaseException) -> str | None:
    """The kind a failed request is counted under; None for an exception that is a bug, not a failure."""
    if isinstance(exc, RequestFailed):
        return exc.kind
    if isinstance(exc, ModelOutputError):
        return "malformed answer"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError):
        return "connection reset"
    return None


@dataclass
class FailureCount:
    """Requests sent under load and those that failed, by kind."""

    requests: int = 0
    by_kind: Counter = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.by_kind.values())

    @property
    def rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    def interval(self, failed: int | None = None) -> tuple[float, float]:
        """The 95 % Clopper–Pearson interval of the failure rate (of one kind, given its count)."""
        from scipy.stats import binomtest

        if not self.requests:
            return 0.0, 1.0
        ci = binomtest(self.failed if failed is None else failed, self.requests).proportion_ci(0.95, "exact")
        return float(ci.low), float(ci.high)

    def describe(self) -> str:
        """'12 of 24,000 requests failed (0.050 %, 95% CI 0.026–0.087 %): HTTP 503 ×9, timeout ×3'."""
        low, high = self.interval()
        kinds = ", ".join(f"{kind} ×{count:,}" for kind, count in self.by_kind.most_common())
        return (f"{self.failed:,} of {self.requests:,} requests failed ({_percent(self.rate)}, 95% CI "
                f"{_percent(low, False)}–{_percent(high)})" + (f": {kinds}" if kinds else ""))

    def to_dict(self) -> dict:
        return {"requests": self.requests, "failed": self.failed, "by_kind": dict(self.by_kind)}

    @classmethod
    def from_dict(cls, data: dict | None) -> FailureCount | None:
        return None if not data else cls(int(data["requests"]), Counter(data.get("by_kind") or {}))


def judge_rate(count: FailureCount, limit: float, failed: int | None = None) -> bool | None:
    """True: the whole interval within the limit; False: above it; None: the interval straddles it."""
    failed = count.failed if failed is None else failed
    if limit <= 0:
        return failed == 0
    low, high = count.interval(failed)
    return True if high <= limit else False if low > limit else None


def _percent(rate: float, unit: bool = True) -> str:
    digits = 3 if rate < 0.01 else 2 if rate < 0.1 else 1
    return f"{rate * 100:.{digits}f}" + (" %" if unit else "")


def error_rate_verdicts(model: str, scenario: str, load: str, count: FailureCount | None,
                        table: dict) -> list[tuple[str, float, float, bool | None, str]]:
    """(check, measured rate, limit, passed, message) for ``max_error_rate`` and each kind's limit in
    ``max_error_rate_by_kind``; none where nothing failed and no limit asks. Without a configured limit a
    failure is judged against 0: a failed request was an error before it was a figure, and stays one."""
    by_kind = table.get("max_error_rate_by_kind") or {}
    if count is None or (not count.failed and "max_error_rate" not in table and not by_kind):
        return []
    where = f"{model} LoadGen {scenario}{load}"
    limits = [("max_error_rate", None, float(table.get("max_error_rate", 0.0)))]
    limits += [(f"max_error_rate[{kind}]", kind, float(limit)) for kind, limit in sorted(by_kind.items())]
    verdicts = []
    for check, kind, limit in limits:
        failed = count.failed if kind is None else count.by_kind.get(kind, 0)
        passed = judge_rate(count, limit, failed)
        relation = {True: "≤", False: ">", None: "≈"}[passed]
        low, high = count.interval(failed)
        figure = count.describe() if kind is None else (
            f"{failed:,} of {count.requests:,} requests failed with {kind} ({_percent(failed / count.requests)}, "
            f"95% CI {_percent(low, False)}–{_percent(high)})" if count.requests else f"no requests sent ({kind})")
        why = "" if passed is not None else (" — too few requests to tell: the interval holds the limit; raise "
                                             f"min_query_count or min_duration_ms in [{model}.loadgen]")
        default = "" if kind is not None or "max_error_rate" in table else " (the default: none may fail)"
        verdicts.append((check, failed / count.requests if count.requests else 0.0, limit, passed,
                         f"{where}: {figure} {relation} {check} {_percent(limit)}{default}{why}"))
    return verdicts
