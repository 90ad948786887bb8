"""What the session's collaborators (side-by-side timing, diagnostics, LoadGen runs) may use of the session.

Declared here, so that each is a collaborator with stated needs and state of its own, not a mixin reading
attributes defined in another file. :class:`~pytest_sketchbench.session.SketchSession` satisfies it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from pytest_sketchbench.config import SketchConfig
    from pytest_sketchbench.data import Dataset
    from pytest_sketchbench.host_audit import HostAudit
    from pytest_sketchbench.measure import MemoryTracker
    from pytest_sketchbench.models.base import ModelPlugin
    from pytest_sketchbench.models.registry import Registry
    from pytest_sketchbench.options import Options, RunSetup
    from pytest_sketchbench.results import LatencyStats, ModelResult


class SessionCore(Protocol):
    options: Options
    setup: RunSetup
    registry: Registry
    config: SketchConfig
    audit: HostAudit
    device: str
    profile: str
    selected: list[str]
    notes: list[str]
    trackers: dict[str, MemoryTracker]  # memory tracked per model over load + accuracy pass
    runtimes_used: set[str]  # runtimes this process has loaded a model into

    def record(self, model: str) -> ModelResult: ...

    def guarded(self, name: str, stage: str) -> AbstractContextManager[None]: ...

    def load_model(self, name: str) -> ModelPlugin: ...

    def predictions(self, name: str) -> Any: ...  # the model's accuracy pass (made on first call)

    def scored(self, name: str) -> Any: ...  # the accuracy pass if made, else None

    def dataset(self) -> Dataset: ...

    def model_dataset(self, name: str) -> tuple[Dataset, np.ndarray | None]: ...

    def measure_latency(self, name: str, batch_size: int, benchmark: Any = None) -> LatencyStats: ...

    def drawings(self, count: int) -> np.ndarray: ...

    def threads(self) -> int | None: ...

    def note(self, name: str, key: str, message: str) -> None: ...

    def deadline_of(self, name: str) -> tuple[float | None, str]: ...
