"""The session's LoadGen runs: each planned scenario of a model run once per process, its result on the record.

A mixin of :class:`~pytest_sketchbench.session.SketchSession` (like ``Diagnostics``): it uses the session's
models, dataset, category mapping, accuracy pass and guarded stages.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from pytest_sketchbench import loadgen
from pytest_sketchbench.errors import ModelUnavailable
from pytest_sketchbench.measure import classify, quiet_process


class LoadRuns:
    def loadgen_table(self, name: str) -> dict:
        """The model's ``[<model>.loadgen]`` settings on this device profile (empty: no scenarios)."""
        return self.config.limits_for(name, self.profile).loadgen

    def loadgen_run(self, name: str, run: str, report_dir: Path | None) -> loadgen.ScenarioResult:
        """Run (once) one of the model's planned LoadGen runs; its logs go to ``<report dir>/<model>/loadgen/``."""
        table = self.loadgen_table(name)
        if run not in loadgen.planned_runs(table):
            raise ModelUnavailable(f"model '{name}'", f"no LoadGen {run} run configured "
                                   f"(its gate's key under [{name}.loadgen] in the config)", "")
        done = self.record(name).setdefault("loadgen", {})
        if run not in done:
            with self.guarded(name, f"LoadGen {run}"):
                done[run] = self._loadgen_run(name, run, table, report_dir).to_dict()
        return loadgen.ScenarioResult.from_dict(done[run])

    def _loadgen_run(self, name: str, run: str, table: dict, report_dir: Path | None) -> loadgen.ScenarioResult:
        from pytest_sketchbench.report.tables import safe_name

        plugin = self.load_model(name)
        dataset, columns = self.model_dataset(name)
        concurrency = int(table.get("concurrency") or plugin.config.get("concurrency") or 1)
        base = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix="sketch-loadgen-"))
        log_dir = base / safe_name(name) / "loadgen" / run
        with quiet_process(self._trackers.values()):  # the memory sampler would take the GIL from the SUT
            result, answers = loadgen.run_scenario(lambda images: classify(plugin, images, columns),
                                                   dataset.images, run, table, log_dir, concurrency)
        if answers is not None:  # accuracy mode: LoadGen's answers against the accuracy pass, drawing by drawing
            by_index = np.array([answers.get(i, -1) for i in range(len(dataset))])
            result.accuracy = float(np.mean(by_index == dataset.labels))
            result.differs_from_accuracy_pass = int(np.sum(by_index != self.predictions(name).predicted))
        return result
