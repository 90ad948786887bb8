"""The session's latency timings: ``infer`` alone on one prepared batch, once per (model, batch size) and run.

A collaborator of :class:`~pytest_sketchbench.session.SketchSession` (like ``LoadRuns``): it uses the session's
models, drawings, records and accuracy pass through :class:`~pytest_sketchbench.session_core.SessionCore`, and the
first-call figure of ``Diagnostics``. pytest-benchmark times the calls when it is on, our timer when it is not
(under xdist, where pytest-benchmark switches itself off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_sketchbench.codec import latency_figures
from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.measure import plan_rounds, quiet_process, time_calls, timed_call
from pytest_sketchbench.results import LatencyStats, ModelResult
from pytest_sketchbench.stats import latency_stats, throughput_knee

if TYPE_CHECKING:
    from pytest_sketchbench.diagnostics import Diagnostics
    from pytest_sketchbench.models.base import ModelPlugin
    from pytest_sketchbench.session_core import SessionCore


def keep_extra_results(record: ModelResult, plugin: ModelPlugin) -> None:
    """The plugin's own figures (an API model's service levels, a served model's time split) on its record."""
    extra = plugin.extra_results()
    if extra is not None:
        record.extras[plugin.results_key] = extra


class LatencyRuns:
    """Each (model, batch size) timed once; the figures land on the model's record."""

    def __init__(self, core: SessionCore, diagnostics: Diagnostics):
        self.core, self.diagnostics = core, diagnostics

    def measure(self, name: str, batch_size: int, benchmark: Any = None) -> LatencyStats:
        """Time ``infer`` alone on one prepared batch, or reuse the figures this run already has."""
        record = self.core.record(name)
        known = record.timing.get(batch_size)
        if known is not None:
            return known
        plugin = self.core.load_model(name)
        if plugin.times_own_requests:
            return self._api_latency(name, plugin, batch_size, benchmark)
        self.diagnostics.first_call(name, plugin)
        prepared = plugin.prepare(self.core.drawings(batch_size))
        timed = timed_call(plugin, prepared)

        def call(_batch: Any) -> None:  # pytest-benchmark passes the batch back in
            timed()
        with quiet_process(self.core.trackers.values()):
            rounds = plan_rounds(lambda: call(prepared), self.core.options.latency_budget_s, min_rounds=20,
                                 max_rounds=2000)
            warmup = max(3, rounds // 20)
            if benchmark is not None and not benchmark.disabled:
                benchmark.group = f"sketch latency, batch {batch_size}"
                benchmark.pedantic(call, args=(prepared,), rounds=rounds, warmup_rounds=warmup, iterations=1)
                samples, timer = list(benchmark.stats.stats.data), "pytest-benchmark"
            else:
                samples, timer = time_calls(lambda: call(prepared), rounds, warmup), "sketchbench"
        stats = latency_stats(samples, batch_size, timer)
        keep_extra_results(record, plugin)  # a served model splits its requests' time: refresh it
        if benchmark is not None:
            benchmark.extra_info.update(latency_figures(stats))
        record.timing[batch_size] = stats
        if len(record.timing) > 1:  # the batch-size sweep: where a larger batch stops paying
            record.batch_sweep = throughput_knee({size: t.throughput_per_s for size, t in record.timing.items()})
        return stats

    def _api_latency(self, name: str, plugin: ModelPlugin, batch_size: int, benchmark: Any) -> LatencyStats:
        """API models: one drawing per request, timed per request during the accuracy pass (no extra cost)."""
        if batch_size != 1:
            raise ModelUnavailable(f"model '{name}'", f"an API model sends one drawing per request: batch "
                                   f"{batch_size} latency is not applicable", "")
        self.core.predictions(name)
        samples = plugin.measured_latencies()
        record = self.core.record(name)
        if not samples:
            raise SketchBenchError(f"model '{name}'", "no request succeeded, so no latency was measured",
                                   str(record.extras.get("api", {}).get("last_error") or "check the endpoint"))
        stats = latency_stats(samples, 1, "api-requests")
        if benchmark is not None:
            benchmark.extra_info.update(latency_figures(stats))
        record.timing[1] = stats
        return stats
