"""Running one model's stage under a deadline, so that a hanging model is recorded and the run moves on."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pytest_sketchbench.errors import ModelTimeout

DEFAULT_TIMEOUT_S = 600.0  # per stage (load, accuracy pass, one timing): minutes even for a slow CPU
_armed = False


@contextmanager
def deadline(seconds: float | None, model: str, stage: str, option: str = "timeout_s") -> Iterator[None]:
    """Raise :class:`ModelTimeout` in this thread if the block runs past ``seconds``.

    SIGALRM interrupts Python code and sleeps; a runtime stuck inside one C call is interrupted when it
    returns. Only the main thread can take signals, and only the outermost deadline is armed.
    """
    global _armed
    usable = (seconds and math.isfinite(seconds) and hasattr(signal, "setitimer") and not _armed
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise ModelTimeout(f"model '{model}'", f"{stage} did not finish within {seconds:g} s (timed out)",
                           f"raise [models.{model}] {option} if the model is just slow")

    previous = signal.signal(signal.SIGALRM, expire)
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _armed = False


def remaining_s() -> float | None:
    """Seconds left before the armed deadline fires (None: none armed)."""
    if not _armed:
        return None
    return signal.getitimer(signal.ITIMER_REAL)[0]


@contextmanager
def suspended() -> Iterator[None]:
    """No deadline fires inside the block: a signal raised in a C++ library's callbacks (LoadGen's) would unwind
    while its threads still use the objects the unwinding destroys. The timer is stopped, and re-armed with what
    was left after the block; if that ran out meanwhile, the deadline fires right after it, outside."""
    if not _armed:
        yield
        return
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, max(left - (time.monotonic() - started), 1e-3))


def interrupt_on_sigterm(config) -> None:
    """SIGTERM (CI cancellation, ``timeout``) ends the run like Ctrl-C: the reports of what was measured are
    still written. Only where nobody else handles SIGTERM, and undone when pytest unconfigures."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
