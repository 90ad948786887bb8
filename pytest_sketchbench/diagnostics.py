"""What a run measures beyond one model alone: parity with another model, end-to-end and cold-start
latency, every pair of selected models timed side by side, and profiles on demand.

A collaborator of :class:`~pytest_sketchbench.session.SketchSession` (through
:class:`~pytest_sketchbench.session_core.SessionCore`, and the side-by-side timing). Each figure is measured once
per run and kept on the model's record, where the checks and the reports read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pytest_sketchbench.codec import latency_figures
from pytest_sketchbench.data import category_columns
from pytest_sketchbench.errors import (
    ModelFailure,
    ModelUnavailable,
    PartnerFailure,
    ServerUnreachable,
    SketchBenchError,
)
from pytest_sketchbench.measure import (
    STAGES,
    accuracy_pass,
    first_call_s,
    plan_rounds,
    quiet_process,
    time_end_to_end,
)
from pytest_sketchbench.metrics import parity
from pytest_sketchbench.results import Parity
from pytest_sketchbench.stats import latency_stats

if TYPE_CHECKING:
    from pytest_sketchbench.session_core import SessionCore
    from pytest_sketchbench.side_by_side import SideBySide

PAIR_BATCH = 1  # every pair of models is compared on single drawings, the latency a user waits for


class Diagnostics:
    """Parity, end-to-end, pairwise and profiling measurements, recorded on the session's models."""

    def __init__(self, core: SessionCore, side_by_side: SideBySide):
        self.core, self.side_by_side = core, side_by_side
        self._followed: dict[str, tuple] = {}  # model followed by a parity limit → its answers (one pass each)

    # -- parity -----------------------------------------------------------------------------------
    def parity(self, name: str, other: str) -> Parity:
        with self.core.guarded(name, f"comparing with {other}"):
            return self._parity(name, other)

    def _parity(self, name: str, other: str) -> Parity:
        """Agreement and probability differences with ``other`` on every drawing both are scored on."""
        record = self.core.record(name)
        known = record.parity.get(other)
        if known is not None:
            return known
        if other == name:
            raise SketchBenchError(f"model '{name}'", "a parity limit names the model itself",
                                   "name the model it was exported or converted from in 'with'")
        mine = self.core.predictions(name)
        theirs = self._followed_predictions(other)
        if record.categories_left_out or len(mine.labels) != len(theirs[0]):
            raise ModelUnavailable(f"model '{name}'", f"not compared with {other}: the two are scored on different "
                                   "drawings (categories left out)", "")
        result = parity(mine.predicted, theirs[0], mine.labels, mine.probabilities, theirs[1])
        categories = mine.categories
        for row in result.disagreeing:  # names, not indices, in the reports
            row.label, row.predicted = categories[int(row.label)], _name(categories, int(row.predicted))
            row.with_predicted = _name(categories, int(row.with_predicted))
        result.with_model = other
        record.parity[other] = result
        return result

    def _followed_predictions(self, other: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The followed model's answers: from this run when it was scored here, else from a pass of its own
        (loaded beside the model, outside its memory tracking, never reported as a result)."""
        done = self.core.scored(other)
        if done is not None:
            return done.predicted, done.probabilities
        if other in self._followed:  # several exports follow one model: its pass runs once
            return self._followed[other]
        if other not in self.core.registry.specs:
            raise SketchBenchError(f"parity limit 'with = \"{other}\"'", "names no registered model",
                                   f"known models: {', '.join(self.core.registry.specs)}")
        plugin = self.side_by_side.reference(other)
        dataset = self.core.dataset()
        columns = category_columns(dataset, other, plugin.categories, strict=False)
        if columns is not None and (columns < 0).any():
            raise ModelUnavailable(f"model '{other}'", "lacks some of the dataset's categories: parity not judged", "")
        with quiet_process(self.core.trackers.values(), settle_s=0):
            result = accuracy_pass(plugin, dataset, self.core.options.eval_batch_size, columns)
        self._followed[other] = (result.predicted, result.probabilities)
        return self._followed[other]

    # -- end to end and cold start -------------------------------------------------------------
    def end_to_end(self, name: str) -> dict:
        with self.core.guarded(name, "timing end to end"):
            return self._end_to_end(name)

    def _end_to_end(self, name: str) -> dict:
        """One drawing from uint8 bitmap to class, each stage timed within the same calls."""
        record = self.core.record(name)
        if record.end_to_end:
            return record.end_to_end
        plugin = self.core.load_model(name)
        if not plugin.local:
            raise ModelUnavailable(f"model '{name}'", "an API model's end-to-end latency is its request latency "
                                   "(see its batch-1 latency)", "")
        self.first_call(name, plugin)
        images = self.core.drawings(1)
        with quiet_process(self.core.trackers.values()):
            rounds = plan_rounds(lambda: time_end_to_end(plugin, images, 1), self.core.options.latency_budget_s,
                                 min_rounds=20, max_rounds=2000)
            stages = time_end_to_end(plugin, images, rounds, warmup=max(3, rounds // 20))
        total = np.sum([stages[stage] for stage in STAGES], axis=0)
        whole = float(total.sum()) or 1.0
        result = {**latency_figures(latency_stats(total, 1)),
                  "stages": {stage: {"median_ms": float(np.median(stages[stage]) * 1000),
                                     "share": float(np.sum(stages[stage]) / whole)} for stage in STAGES}}
        result["overhead_share"] = 1.0 - result["stages"]["runtime"]["share"]
        record.end_to_end = result
        return result

    def first_call(self, name: str, plugin) -> None:
        """Before a model's first use (its accuracy pass or its first timing): one drawing, timed as the
        first call after loading, for the cold-start checks (local models only)."""
        record = self.core.record(name)
        if plugin.local and record.cold_start is None:
            record.cold_start = {"first_call_ms": first_call_s(plugin, self.core.drawings(1)) * 1000}

    # -- every pair side by side ----------------------------------------------------------------
    def pairwise_speed(self, name: str) -> list[dict]:
        """``name`` timed interleaved with each local model selected after it (each pair once per run). A
        partner that cannot load, raises or hangs is recorded on the partner, under the partner's own deadline;
        the pair is left out with a note and this model's status and later stages are untouched."""
        plugin = self.core.load_model(name)
        if not plugin.local:
            raise ModelUnavailable(f"model '{name}'", "an API model is not timed beside local models", "")
        later = self.core.selected[self.core.selected.index(name) + 1:]
        measured = []
        for other in later:
            spec = self.core.registry.specs.get(other)
            if spec is None or not getattr(spec.plugin_class(), "local", True):
                continue
            try:  # the partner alone first, under its own guard: its failures are its own
                with self.core.guarded(other, f"a call as {name}'s side-by-side partner"):
                    partner = self.side_by_side.reference(other)
                    partner.infer(partner.prepare(self.core.drawings(PAIR_BATCH)))
                # which of the two is faster
                measured.append(self.side_by_side.relative_speed(name, other, PAIR_BATCH, (1.0,)))
            except (ModelUnavailable, ServerUnreachable):  # e.g. its runtime is not installed, or its server is
                continue                                     # down (its own tests say so): that pair is left out
            except PartnerFailure as failure:
                self.partner_failed(name, failure)
                self._leave_pair_out(name, other)
            except SketchBenchError:  # recorded on the partner by its guard
                self._leave_pair_out(name, other)
        return measured

    def partner_failed(self, name: str, failure: PartnerFailure) -> str:
        """Record a partner's failure while timed beside ``name`` on the partner; returns the line."""
        line = str(ModelFailure.from_exception(failure.partner, f"timing beside {name}", failure.cause))
        self.core.note(failure.partner, "errors", line)
        return line

    def _leave_pair_out(self, name: str, other: str) -> None:
        note = f"{name} and {other} were not timed side by side: {other} failed (see its errors)"
        if note not in self.core.notes:
            self.core.notes.append(note)

    # -- profiling -----------------------------------------------------------------------------
    def take_profile(self, name: str, folder: Path) -> dict:
        with self.core.guarded(name, "profiling"):
            record = self.core.record(name)
            if record.profile:
                return record.profile
            from pytest_sketchbench.profiling import profile_model

            plugin = self.core.load_model(name)
            if not plugin.local:
                raise ModelUnavailable(f"model '{name}'", "an API model runs elsewhere: nothing here to profile", "")
            self.core.predictions(name)  # memory tracking ends before a profiler allocates anything
            record.profile = profile_model(plugin, self.core.drawings(1), folder, self.core.trackers.values())
            return record.profile


def _name(categories: list[str], label: int) -> str:
    return categories[label] if 0 <= label < len(categories) else "(invalid)"
