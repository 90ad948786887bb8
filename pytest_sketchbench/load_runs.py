"""The session's LoadGen runs: each planned scenario of a model run once per process, its result on the record.

A collaborator of :class:`~pytest_sketchbench.session.SketchSession` (like ``Diagnostics``): it uses the session's
models, dataset, category mapping, accuracy pass and guarded stages through
:class:`~pytest_sketchbench.session_core.SessionCore`, and the speed index of the side-by-side timing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_sketchbench import loadgen
from pytest_sketchbench.config import LOADGEN_DEFAULTS, RELATIVE_LOADGEN
from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.load_shapes import step_rates
from pytest_sketchbench.measure import classify, quiet_process

if TYPE_CHECKING:
    from pytest_sketchbench.session_core import SessionCore
    from pytest_sketchbench.side_by_side import SideBySide


class LoadRuns:
    """The model's planned LoadGen runs, each once per process, their results on the session's records."""

    def __init__(self, core: SessionCore, side_by_side: SideBySide):
        self.core, self.side_by_side = core, side_by_side

    def loadgen_table(self, name: str) -> dict:
        """The model's ``[<model>.loadgen]`` settings on this device profile (empty: no scenarios)."""
        return self.core.config.limits_for(name, self.core.profile).loadgen

    def resolved_loadgen_table(self, name: str) -> dict:
        """The table with each travelling service level (``*_ratio``) turned into the absolute figure LoadGen
        takes, from this run's own measurements; ``loadgen_basis`` on the result says what each came from."""
        record = self.core.record(name)
        if record.loadgen_limits is not None:
            return record.loadgen_limits
        table, basis = dict(self.loadgen_table(name)), {}
        for ratio_key, (absolute_key, base) in RELATIVE_LOADGEN.items():
            if ratio_key not in table:
                continue
            ratio = table.pop(ratio_key)
            if base == "p50":
                p50_ms = self.core.measure_latency(name, 1).median_ms
                table[absolute_key] = ratio * p50_ms
                basis[absolute_key] = f"{ratio:g} × {name}'s batch-1 p50 {p50_ms:.3f} ms"
            else:
                index = self.side_by_side.speed_index() or {}
                if not index.get("calls_per_s"):
                    raise ModelUnavailable(f"model '{name}'", f"{ratio_key} needs the calibration network "
                                           f"({index.get('note', 'not measured')})", "")
                table[absolute_key] = ratio * index["calls_per_s"]
                basis[absolute_key] = f"{ratio:g} × calibration {index['calls_per_s']:,.0f} calls/s"
        record.loadgen_limits, record.loadgen_basis = table, basis
        return table

    def loadgen_run(self, name: str, run: str, report_dir: Path | None) -> loadgen.ScenarioResult:
        """Run (once) one of the model's planned LoadGen runs; its logs go to ``<report dir>/<model>/loadgen/``."""
        table = self.loadgen_table(name)
        if run not in loadgen.planned_runs(table):
            raise ModelUnavailable(f"model '{name}'", f"no LoadGen {run} run configured "
                                   f"(its gate's key under [{name}.loadgen] in the config)", "")
        (timeout, option) = self.core.deadline_of(name)
        duration_ms = table.get("min_duration_ms", LOADGEN_DEFAULTS["min_duration_ms"])
        if run == "Soak":
            duration_ms = table["soak_s"] * 1000
        elif run == "Steps":
            duration_ms = table.get("step_duration_ms", duration_ms) * len(step_rates(table))
        if timeout is not None and duration_ms >= timeout * 1000:  # refused up front, not cut short by a signal
            what = (f"soak_s = {table['soak_s']:g}" if run == "Soak" else
                    f"step_duration_ms = {duration_ms // len(step_rates(table)):,} per step" if run == "Steps" else
                    f"min_duration_ms = {duration_ms:,}")
            raise SketchBenchError(f"model '{name}'", f"[{name}.loadgen] {what} cannot "
                                   f"finish within its stage deadline of {timeout:g} s",
                                   f"raise {option} in [models.{name}] or lower {what.split(' =')[0]}")
        record = self.core.record(name)
        if record.loadgen is None:
            record.loadgen = {}
        done = record.loadgen
        if run not in done:
            with self.core.guarded(name, f"LoadGen {run}"):
                done[run] = self._loadgen_run(name, run, self.resolved_loadgen_table(name), report_dir).to_dict()
        return loadgen.ScenarioResult.from_dict(done[run])

    def _loadgen_run(self, name: str, run: str, table: dict, report_dir: Path | None) -> loadgen.ScenarioResult:
        from pytest_sketchbench.files import safe_name

        plugin = self.core.load_model(name)
        dataset, columns = self.core.model_dataset(name)
        concurrency = int(table.get("concurrency") or plugin.config.get("concurrency") or 1)
        base = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix="sketch-loadgen-"))
        log_dir = base / safe_name(name) / "loadgen" / run
        with quiet_process(self.core.trackers.values()):  # the memory sampler would take the GIL from the SUT
            result, answers = loadgen.run_scenario(lambda images: classify(plugin, images, columns),
                                                   dataset.images, run, table, log_dir, concurrency,
                                                   server_url=plugin.config.get("url"))
        if result.mode == "AccuracyOnly":  # LoadGen's answers against the accuracy pass, drawing by drawing
            by_index = np.full(len(dataset), -1)
            for index, label in answers:
                by_index[index] = label
            result.accuracy = float(np.mean(by_index == dataset.labels))
            result.differs_from_accuracy_pass = int(np.sum(by_index != self.core.predictions(name).predicted))
        elif table.get("answers_under_load") and answers:  # MLPerf TEST01: every answer given under load
            indices, labels = np.array(answers).T
            result.answers_compared = len(answers)
            result.answers_differ = int(np.sum(labels != self.core.predictions(name).predicted[indices]))
        return result
