"""Timing a model side by side with a reference in one process: the figures that hold on any machine.

A collaborator of :class:`~pytest_sketchbench.session.SketchSession`, using it through
:class:`~pytest_sketchbench.session_core.SessionCore`: the references (a registered model, the calibration workload,
``baseline:<model>``), the interleaved relative speed, and the machine speed index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_sketchbench.config import CALIBRATION
from pytest_sketchbench.errors import ModelUnavailable, PartnerFailure
from pytest_sketchbench.measure import quiet_process, time_calls, time_interleaved, timed_call
from pytest_sketchbench.models.base import ModelPlugin
from pytest_sketchbench.models.onnx_model import OnnxModel
from pytest_sketchbench.options import BUNDLED_DIR
from pytest_sketchbench.stats import decided, sequential_ratio

if TYPE_CHECKING:
    from pytest_sketchbench.session_core import SessionCore

CALIBRATION_FILE = BUNDLED_DIR.parent / "calibration" / "calibration.onnx"
INTERLEAVE_BLOCK_S = 0.01  # one side's share of an interleaved round
MAX_PREEMPTED_SHARE = 0.10  # more of the timed wall time spent waiting for the core: the host is unfit


class SideBySide:
    """Side-by-side timing: the references it loads, the interleaved ratios it records on the session's models,
    and the speed index."""

    def __init__(self, core: SessionCore):
        self.core = core
        self._references: dict[str, ModelPlugin] = {}  # timed beside the models, never scored
        self._speed_index: dict | None = None

    def reference(self, name: str) -> ModelPlugin:
        """A model timed beside others, loaded once, outside any memory tracking: a registered model
        (selected or not), the built-in calibration workload, or ``baseline:<model>`` — the same
        model's file from ``--sketch-baseline-models``."""
        if name in self._references:
            return self._references[name]
        threads = self.core.threads()
        if name == CALIBRATION:
            # the same thread settings as the models it is compared with (runtime default, or
            # --sketch-threads / the worker's cores): contention then slows both sides alike
            plugin = OnnxModel(CALIBRATION, {"path": str(CALIBRATION_FILE)})
        elif name.startswith("baseline:"):
            plugin = self._baseline_model(name.removeprefix("baseline:"))
        else:
            plugin = self.core.registry[name].create()
        plugin.config.setdefault("device", self.core.device)
        if threads:
            plugin.config.setdefault("threads", threads)
        with quiet_process(self.core.trackers.values(), settle_s=0):
            try:
                plugin.import_runtime()
                self.core.runtimes_used.add(plugin.runtime)
                plugin.load()
            except ImportError as exc:
                raise ModelUnavailable(f"reference '{name}'", f"its runtime is not installed ({exc.name})",
                                       "pip install 'pytest-sketchbench[onnx]' (calibration runs in ONNX Runtime)"
                                       ) from None
        self._references[name] = plugin
        return plugin

    def _baseline_model(self, name: str) -> ModelPlugin:
        folder = Path(self.core.options.baseline_models)
        spec = self.core.registry[name]
        current = spec.config.get("path")
        if not current:
            raise ModelUnavailable(f"model '{name}'", "has no model file to compare with a baseline file", "")
        try:
            relative = Path(current).resolve().relative_to(self.core.setup.models_dir.resolve())
        except ValueError:
            relative = Path(Path(current).name)
        path = folder / relative
        if not path.exists():
            raise ModelUnavailable(f"model '{name}'", f"no baseline file {path}",
                                   "put the main branch's model files in --sketch-baseline-models")
        return spec.plugin_class()(f"{name} (baseline)", {**spec.config, "path": str(path)})

    def relative_speed(self, name: str, reference: str, batch_size: int, bounds: tuple[float, ...] = ()) -> dict:
        with self.core.guarded(name, f"timing beside {reference} at batch {batch_size}"):
            return self._relative_speed(name, reference, batch_size, tuple(bounds))

    def _relative_speed(self, name: str, reference: str, batch_size: int, bounds: tuple[float, ...]) -> dict:
        """``name`` and ``reference`` timed in alternating blocks on the same batch until the ratio's interval
        lies clearly on one side of every bound, or the budget is spent (``stats.LOOKS`` looks). Reused for a
        later caller whose bounds it already decides, measured again otherwise."""
        record = self.core.record(name)
        key = (reference, batch_size)
        known = record.relative_speed.get(key)
        if known is not None and decided(known, bounds):
            return known
        if name in self.core.trackers:  # memory is tracked over load + accuracy pass: finish that first
            self.core.predictions(name)
        plugin = self.core.load_model(name)
        if reference == "calibration" and plugin.times_calibration_itself:
            result = self._inside_runtime(plugin, batch_size, bounds)
            record.relative_speed[key] = result
            return result
        other = self.reference(reference)
        batch = self.core.drawings(batch_size)
        call_a, call_b = timed_call(plugin, plugin.prepare(batch)), timed_call(other, other.prepare(batch))
        if reference in self.core.registry.specs:  # another model of the run: its failure is its own
            call_b = partner_call(reference, call_b)
        clock = self._decision_clock(plugin, other)
        with quiet_process(self.core.trackers.values()):
            per_a, per_b = (max(float(np.median(time_calls(call, 3))), 1e-7) for call in (call_a, call_b))
            block = int(np.clip(INTERLEAVE_BLOCK_S / max(per_a, per_b), 1, 20))  # ~10 ms of calls per side
            # the budget is doubled (each round times two workloads); at least 50 rounds for the interval
            first = int(np.clip(2 * self.core.options.latency_budget_s / (block * (per_a + per_b)), 50, 1000))
            samples = time_interleaved(call_a, call_b, 0, warmup=max(5, first // 20), block=block)
            host = self.core.audit.now()

            def more(rounds: int) -> tuple[list[float], list[float]]:
                samples.extend(time_interleaved(call_a, call_b, rounds, block=block,
                                                start_with_b=len(samples.wall_a) // block % 2 == 1))
                host.update(self.core.audit.now())
                return samples.clock(clock)

            # on the wall clock a busy host preempts the longer call more often: the p10 ratio, which preempted
            # calls rarely reach, is then the figure that holds (CPU time needs no such help)
            result, look, rounds = sequential_ratio(more, first, bounds,
                                                    lambda: 10 if clock == "wall" and host["unfit"] else 50)
        wall, cpu = (float(np.median(a) / np.median(b)) for a, b in (samples.clock("wall"), samples.clock("cpu")))
        # the direct sign of other processes taking the core: wall time that was not this process's CPU time
        # (the load average lags a minute behind; this is measured over the very calls being judged)
        preempted = max(1 - sum(samples.cpu_a) / sum(samples.wall_a), 1 - sum(samples.cpu_b) / sum(samples.wall_b))
        unfit = list(host["unfit"])
        if clock == "cpu" and preempted > MAX_PREEMPTED_SHARE:
            unfit.append(f"preempted {preempted:.0%} of the timed wall time")
        result.update(calls_per_side=result["rounds"], rounds=rounds, block=block, looks=look, bounds=list(bounds),
                      decided=decided(result, bounds), clock=clock, wall_ratio=wall, cpu_ratio=cpu,
                      load_average=host["load_average"], preempted_share=preempted, host_unfit=unfit,
                      contention_allowance=plugin.contention_allowance, reference=reference,
                      batch_size=batch_size, model_p50_ms=float(np.median(samples.wall_a) * 1000),
                      reference_p50_ms=float(np.median(samples.wall_b) * 1000),
                      model_cpu_p50_ms=float(np.median(samples.cpu_a) * 1000),
                      reference_cpu_p50_ms=float(np.median(samples.cpu_b) * 1000))
        record.relative_speed[key] = result
        return result

    def _inside_runtime(self, plugin: ModelPlugin, batch_size: int, bounds: tuple[float, ...]) -> dict:
        """The ratio to the calibration network timed inside the model's own runtime (a browser page), where a
        call from here would time the crossing too: the same stopping rule, on the runtime's wall clock."""
        prepared = plugin.prepare(self.core.drawings(batch_size))
        model_s: list[float] = []
        calibration_s: list[float] = []
        host = self.core.audit.now()

        def more(rounds: int) -> tuple[list[float], list[float]]:
            a, b = plugin.time_beside_calibration(prepared, rounds)
            model_s.extend(a)
            calibration_s.extend(b)
            host.update(self.core.audit.now())
            return model_s, calibration_s

        warm = plugin.time_beside_calibration(prepared, 5)[0]  # also the warm-up: a new shape compiles first
        first = int(np.clip(self.core.options.latency_budget_s / max(float(np.median(warm)), 1e-4) / 2, 50, 400))
        result, look, rounds = sequential_ratio(more, first, bounds, lambda: 10 if host["unfit"] else 50)
        result.update(calls_per_side=result["rounds"], rounds=rounds, block=1, looks=look, bounds=list(bounds),
                      decided=decided(result, bounds), clock="wall", load_average=host["load_average"],
                      host_unfit=list(host["unfit"]), contention_allowance=plugin.contention_allowance,
                      reference="calibration", batch_size=batch_size, timed_in=plugin.placement(),
                      model_p50_ms=float(np.median(model_s) * 1000),
                      reference_p50_ms=float(np.median(calibration_s) * 1000))
        return result

    def _decision_clock(self, plugin: ModelPlugin, other: ModelPlugin) -> str:
        """Which clock decides a ratio: this process's CPU time where both sides compute here, single-threaded,
        on the CPU — a preemption by another process stops both clocks, which removes most of the bias a busy
        host puts on the wall clock (×7 for TensorFlow at 4 busy loops; what remains, evicted caches, is the
        runtime's ``contention_allowance``: scripts/measure_clock_bias.py) — else wall time (a GPU's or a
        server's work is not this process's CPU time, and threads working in parallel would count several
        times). CPU time misses waits (sleeps, I/O), which a local single-threaded CPU model does not have."""
        single = self.core.threads() == 1
        local = all(p.computes_in_process and p.device == "cpu" for p in (plugin, other))
        return "cpu" if single and local else "wall"

    def host_audit(self) -> dict:
        """The host audit as reports show it, with the calibration network's spread across blocks (from the
        speed index, where this run measured one) as the run's measured noise."""
        index = self._speed_index or {}
        spread = index.get("block_spread")
        return self.core.audit.summary({"block_spread": spread} if spread else None)

    @property
    def measured_speed_index(self) -> dict | None:
        """The index if this run measured it (a gate that needed it, or the writer, for the files that quote it);
        renderers and the baseline builder read this and never start a measurement."""
        return self._speed_index

    def speed_index(self) -> dict | None:
        """The machine speed index: calibration-workload calls per second at batch 1 (higher = faster
        machine), measured once per run; None where ONNX Runtime is not installed."""
        if self._speed_index is None:
            try:
                plugin = self.reference(CALIBRATION)
            except ModelUnavailable as exc:
                self._speed_index = {"calls_per_s": None, "note": str(exc)}
                return self._speed_index
            call = timed_call(plugin, plugin.prepare(np.zeros((1, 28, 28), np.uint8)))  # the work is data-blind
            with quiet_process(self.core.trackers.values()):
                samples = time_calls(call, 1000, warmup=100)
            blocks = np.median(np.reshape(samples, (20, -1)), axis=1)  # 20 blocks of 50 calls
            self._speed_index = {"calls_per_s": float(1.0 / np.median(samples)),
                                 "block_spread": float((blocks.max() - blocks.min()) / np.median(blocks)),
                                 "p50_ms": float(np.median(samples) * 1000), "rounds": len(samples),
                                 "workload": "pytest_sketchbench/calibration/calibration.onnx in ONNX Runtime, "
                                             "batch 1, the run's thread settings"}
        return self._speed_index

    def release_references(self) -> None:
        for plugin in self._references.values():
            plugin.release()
        self._references.clear()


def partner_call(partner: str, call):
    """``call`` whose exceptions say they are ``partner``'s (:class:`PartnerFailure`)."""
    def wrapped():
        try:
            return call()
        except Exception as exc:
            raise PartnerFailure(partner, exc) from exc

    return wrapped
