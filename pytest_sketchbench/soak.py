"""A soak: one load held for ``soak_s``, cut into windows, and the trend across them tested like other drift.

A p99 that creeps up over ten minutes, or a server whose memory grows with every request, is invisible in a
two-second run. Each window reports p50/p99 of the requests answered in it, its error rate, and the RSS and CPU
of both sides (the client: this process; the server: the process listening on the served model's port, when it
runs on this machine). The trend of a figure is the least-squares slope across windows with its 95 % interval
(Student's t on the slope's standard error): ``max_p99_drift`` (a share: how much p99 may rise over the soak)
and ``max_memory_growth_mb`` pass when the whole interval of the change over the soak is within the limit, fail
when it is wholly above, and are inconclusive in between.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

if TYPE_CHECKING:
    from pytest_sketchbench.loadgen import ScenarioResult

DEFAULT_WINDOWS = 10


@dataclass
class ResourceSample:
    at_s: float
    client_rss_mb: float
    client_cpu_pct: float
    server_rss_mb: float | None
    server_cpu_pct: float | None


@dataclass
class ResourceSampler:
    """Samples both sides' RSS and CPU every ``every_s`` on a thread (psutil: CPU % since the last sample)."""

    every_s: float
    server_pid: int | None = None
    samples: list[ResourceSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        import psutil

        self._client = psutil.Process()
        self._server = None
        if self.server_pid is not None:
            try:
                self._server = psutil.Process(self.server_pid)
            except psutil.Error:
                self._server = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def __enter__(self) -> ResourceSampler:
        self._started = time.perf_counter()
        for process in filter(None, (self._client, self._server)):
            process.cpu_percent(None)  # the first call only starts psutil's CPU clock
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.every_s):
            server_rss = server_cpu = None
            if self._server is not None:
                try:
                    server_rss, server_cpu = self._server.memory_info().rss / 1e6, self._server.cpu_percent(None)
                except psutil.Error:
                    self._server = None
            self.samples.append(ResourceSample(time.perf_counter() - self._started,
                                               self._client.memory_info().rss / 1e6, self._client.cpu_percent(None),
                                               server_rss, server_cpu))


def resource_summary(samples: list[ResourceSample]) -> dict | None:
    """Mean CPU % and peak RSS of both sides over a run (None for a run shorter than one sample)."""
    if not samples:
        return None
    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def peak(values):
        values = [v for v in values if v is not None]
        return float(max(values)) if values else None

    return {"samples": len(samples), "client_cpu_pct": mean(r.client_cpu_pct for r in samples),
            "client_rss_mb": peak(r.client_rss_mb for r in samples),
            "server_cpu_pct": mean(r.server_cpu_pct for r in samples),
            "server_rss_mb": peak(r.server_rss_mb for r in samples)}


def describe_resources(summary: dict | None) -> str | None:
    """'client CPU 96 %, RSS 412 MB; server CPU 41 %, RSS 230 MB' (the server's where it was measured)."""
    if not summary or summary.get("client_cpu_pct") is None:
        return None
    text = f"client CPU {summary['client_cpu_pct']:.0f} %, RSS {summary['client_rss_mb']:.0f} MB"
    if summary.get("server_cpu_pct") is not None:
        text += f"; server CPU {summary['server_cpu_pct']:.0f} %, RSS {summary['server_rss_mb']:.0f} MB"
    return text


def local_server_pid(url: str | None) -> int | None:
    """The process listening on a served model's port, when the URL points at this machine."""
    if not url:
        return None
    target = urlsplit(url)
    if target.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    import psutil

    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                return connection.pid
    except psutil.Error:
        return None
    return None


def windows(answered: list[tuple[float, float]], failed_at: list[float], resources: list[ResourceSample],
            duration_s: float, count: int = DEFAULT_WINDOWS) -> list[dict]:
    """Per window: requests, p50/p99 (ms) of those answered in it, error rate, and the resource sample taken at
    its end. The last window also takes what was answered after the soak's end (the queue draining)."""
    done_at = np.array([at for at, _ in answered]) if answered else np.empty(0)
    latency = np.array([s for _, s in answered]) if answered else np.empty(0)
    failed = np.array(failed_at) if failed_at else np.empty(0)
    width = duration_s / count
    rows = []
    for index in range(count):
        start, end = index * width, (index + 1) * width
        inside = (done_at >= start) & (done_at < end) if index < count - 1 else done_at >= start
        failures = int(np.sum((failed >= start) & (failed < end) if index < count - 1 else failed >= start))
        answered_here = latency[inside]
        sample = min(resources, key=lambda r: abs(r.at_s - end)) if resources else None  # taken at the window's end
        total = int(answered_here.size) + failures
        rows.append({
            "start_s": round(start, 3), "end_s": round(end, 3), "requests": total,
            "p50_ms": float(np.percentile(answered_here, 50) * 1000) if answered_here.size else None,
            "p99_ms": float(np.percentile(answered_here, 99) * 1000) if answered_here.size else None,
            "error_rate": failures / total if total else None,
            "client_rss_mb": sample.client_rss_mb if sample else None,
            "client_cpu_pct": sample.client_cpu_pct if sample else None,
            "server_rss_mb": sample.server_rss_mb if sample else None,
            "server_cpu_pct": sample.server_cpu_pct if sample else None})
    return rows


def trend(rows: list[dict], key: str, duration_s: float) -> dict | None:
    """The change of ``key`` over the soak (slope × duration) with its 95 % interval; None with < 3 windows."""
    points = [((r["start_s"] + r["end_s"]) / 2, r[key]) for r in rows if r.get(key) is not None]
    if len(points) < 3:
        return None
    from scipy import stats

    x, y = np.array(points).T
    fit = stats.linregress(x, y)
    stderr = float(fit.stderr) if np.isfinite(fit.stderr) else 0.0  # a constant figure: no spread to fit
    spread = stats.t.ppf(0.975, len(points) - 2) * stderr
    return {"change": float(fit.slope * duration_s), "ci_low": float((fit.slope - spread) * duration_s),
            "ci_high": float((fit.slope + spread) * duration_s), "start": float(fit.intercept + fit.slope * x[0]),
            "windows": len(points)}


def run_soak(classify, images: np.ndarray, settings: dict, log_dir: Path, concurrency: int,
             server_url: str | None) -> tuple[ScenarioResult, list[tuple[int, int]]]:
    """Hold the Server load for ``soak_s`` while sampling both sides' resources; the windows and trends go on
    the run's result."""
    from pytest_sketchbench.loadgen import one_test

    duration_s, count = float(settings["soak_s"]), int(settings.get("soak_windows", DEFAULT_WINDOWS))
    held = {**settings, "min_duration_ms": int(duration_s * 1000), "min_query_count": 1}
    with ResourceSampler(duration_s / count, local_server_pid(server_url)) as sampler:
        started = time.perf_counter()
        result, record = one_test(classify, images, "Server", "PerformanceOnly", held, 0.0, log_dir / "soak",
                                  concurrency)
    answered = [(at - started, s) for at, s in zip(record.answered_at, record.answered_s, strict=True)]
    rows = windows(answered, [at - started for at in record.failed_at], sampler.samples, duration_s, count)
    result.soak = {"duration_s": duration_s, "windows": rows, "server_measured": sampler.server_pid is not None,
                   "p99_trend": trend(rows, "p99_ms", duration_s),
                   "server_rss_trend": trend(rows, "server_rss_mb", duration_s),
                   "client_rss_trend": trend(rows, "client_rss_mb", duration_s)}
    return result, record.answers


def soak_verdicts(model: str, where: str, soak: dict | None, table: dict) -> list[tuple]:
    """(check, measured, limit, passed, message) for ``max_p99_drift`` and ``max_memory_growth_mb``."""
    verdicts: list[tuple] = []
    if not soak:
        return verdicts
    if "max_p99_drift" in table:
        drift, limit = soak.get("p99_trend"), float(table["max_p99_drift"])
        if drift is None or not drift["start"]:
            verdicts.append(("soak_p99_drift", None, limit, None, f"{where}: too few windows with answers to fit "
                             "a p99 trend"))
        else:
            share = [drift[k] / drift["start"] for k in ("change", "ci_low", "ci_high")]
            verdicts.append(_judged("soak_p99_drift", share, limit, f"{where}: p99 changed {share[0]:+.1%} over the "
                                    f"soak (95% CI {share[1]:+.1%} to {share[2]:+.1%}; from {drift['start']:.2f} ms, "
                                    f"{drift['windows']} windows)", "max_p99_drift", f"{limit:.0%}", model))
    if "max_memory_growth_mb" in table:
        side = "server" if soak.get("server_rss_trend") else "client"
        growth, limit = soak.get(f"{side}_rss_trend"), float(table["max_memory_growth_mb"])
        if growth is None:
            verdicts.append(("soak_memory_growth", None, limit, None, f"{where}: too few windows to fit a memory "
                             "trend"))
        else:
            values = [growth[k] for k in ("change", "ci_low", "ci_high")]
            verdicts.append(_judged("soak_memory_growth", values, limit, f"{where}: {side} RSS grew "
                                    f"{values[0]:+.1f} MB over the soak (95% CI {values[1]:+.1f} to "
                                    f"{values[2]:+.1f} MB, {growth['windows']} windows)", "max_memory_growth_mb",
                                    f"{limit:g} MB", model))
    return verdicts


def _judged(check: str, values: list[float], limit: float, figure: str, key: str, shown: str, model: str) -> tuple:
    change, low, high = values
    passed = True if high <= limit else False if low > limit else None
    relation = {True: "≤", False: ">", None: "≈"}[passed]
    why = "" if passed is not None else f" — the interval holds the limit: a longer soak_s in [{model}.loadgen]"
    return check, change, limit, passed, f"{figure} {relation} {key} {shown}{why}"


def window_table(rows: list[dict]) -> list[str]:
    """The windows as aligned text lines, for the terminal and the reports."""
    def number(value, digits: int = 1) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = ["window (s)   requests   p50 ms   p99 ms   errors   client MB  CPU%   server MB  CPU%"]
    for r in rows:
        errors = "–" if r["error_rate"] is None else f"{r['error_rate']:.2%}"
        lines.append(f"{r['start_s']:5.0f}–{r['end_s']:<5.0f} {r['requests']:>9,} {number(r['p50_ms'], 2):>8} "
                     f"{number(r['p99_ms'], 2):>8} {errors:>8} {number(r['client_rss_mb']):>11} "
                     f"{number(r['client_cpu_pct'], 0):>5} {number(r['server_rss_mb']):>11} "
                     f"{number(r['server_cpu_pct'], 0):>5}")
    return lines
