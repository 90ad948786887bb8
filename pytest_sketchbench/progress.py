"""Where a long run is: the model and stage shown on the terminal line while it runs (load, the accuracy pass with
drawings per second and an ETA, each timing, LoadGen scenarios), erased when the stage ends.

Shown only where a person watches: an interactive terminal, pytest's verbosity at least the default, not on a CI
system (pytest's own test: ``CI`` or ``BUILD_NUMBER`` set) and not in an xdist worker (which has no terminal).
Everywhere else the stages are silent, so logs hold only what pytest itself prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol


class StageProgress(Protocol):
    """What the session tells about its stages; nested stages (a partner's call inside a timing) stack."""

    def start(self, model: str, stage: str) -> None: ...

    def advance(self, done: int, total: int, unit: str = "drawings") -> None: ...

    def end(self) -> None: ...


class NoProgress:
    """Silent: -q, CI logs, pipes, xdist workers."""

    def start(self, model: str, stage: str) -> None:
        pass

    def advance(self, done: int, total: int, unit: str = "drawings") -> None:
        pass

    def end(self) -> None:
        pass


class TerminalStatus:
    """The stage appended to the terminal's current line (``… [cnn: the accuracy pass 1,280/6,576 drawings,
    850/s, ETA 6 s]``) and erased again, so pytest's own dots and percentages land where they always do."""

    MIN_INTERVAL_S = 0.25  # redraws per second at most: the terminal is not the bottleneck

    def __init__(self, writer: Any, uncaptured: Callable[[], AbstractContextManager[Any]] = nullcontext):
        self.writer = writer  # pytest's TerminalWriter (write, flush, fullwidth, _current_line)
        self.uncaptured = uncaptured  # pytest captures fd 1 during a test: drawn with capturing suspended
        self.stages: list[tuple[str, float]] = []
        self.base: str | None = None  # what pytest had written on the line before the status
        self.shown_at = 0.0

    def start(self, model: str, stage: str) -> None:
        self.stages.append((f"{model}: {stage}", time.monotonic()))
        self._show(self.stages[-1][0])

    def advance(self, done: int, total: int, unit: str = "drawings") -> None:
        if not self.stages:
            return
        now = time.monotonic()
        if now - self.shown_at < self.MIN_INTERVAL_S and done < total:
            return
        label, started = self.stages[-1]
        rate = done / max(now - started, 1e-9)
        eta = f", ETA {(total - done) / rate:.0f} s" if done < total and rate > 0 else ""
        self._show(f"{label} {done:,}/{total:,}{eta} ({rate:,.0f} {unit}/s)")

    def end(self) -> None:
        if self.stages:
            self.stages.pop()
        if self.stages:
            self._show(self.stages[-1][0])
        elif self.base is not None:
            self._draw("", clear_to=self.base)
            self.base = None

    def _show(self, text: str) -> None:
        if self.base is None:
            self.base = self.writer._current_line
        self._draw(f"  [{text}]")
        self.shown_at = time.monotonic()

    def _draw(self, status: str, clear_to: str | None = None) -> None:
        base = self.base or ""
        width = max(self.writer.fullwidth - 1, len(base))
        line = base + status if len(base + status) <= width else status.lstrip()[:width]  # a narrow terminal
        text = "\r" + line + " " * (width - len(line))
        if clear_to is not None:
            text += "\r" + clear_to  # the cursor back where pytest left it
        with self.uncaptured():
            self.writer.write(text)
            self.writer.flush()
        self.writer._current_line = base  # pytest measures its line from what it wrote, not from the status


def stage_progress(config: Any, worker: bool) -> StageProgress:
    """A terminal status where a person watches, silence elsewhere (see the module docstring)."""
    from _pytest.assertion.util import running_on_ci

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or worker or running_on_ci() or config.get_verbosity() < 0 or not reporter.isatty():
        return NoProgress()
    writer = getattr(reporter, "_tw", None)
    if writer is None or not hasattr(writer, "_current_line"):
        return NoProgress()  # a pytest whose writer we do not know: say nothing rather than garble the line
    capture = config.pluginmanager.get_plugin("capturemanager")
    return TerminalStatus(writer, capture.global_and_fixture_disabled if capture is not None else nullcontext)
