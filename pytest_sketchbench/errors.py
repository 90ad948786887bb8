"""One error type for everything a user can fix: it names the thing and the fix."""

from __future__ import annotations


class SketchBenchError(Exception):
    """A problem with the user's input (data, model file, config), stated as one actionable line."""

    def __init__(self, subject: str, problem: str, fix: str = ""):
        subject, problem, fix = inert(subject), inert(problem), inert(fix)
        self.subject, self.problem, self.fix = subject, problem, fix
        message = f"{subject}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)


class ModelOutputError(SketchBenchError):
    """A model produced outputs that cannot be probabilities (NaN, inf, wrong shape)."""


class RequestFailed(SketchBenchError):
    """One request to a served model failed (an HTTP error status, a timeout, a reset connection): under load
    it is counted by ``kind`` and the run goes on; in one-off calls it stops the stage like any other error."""

    def __init__(self, subject: str, problem: str, fix: str = "", kind: str = "request failed"):
        super().__init__(subject, problem, fix)
        self.kind = kind


class ModelUnavailable(SketchBenchError):
    """The model cannot run here for a reason the user chose (e.g. no API key): skip, do not fail."""


class ServerUnreachable(SketchBenchError):
    """Nothing answers at a served model's URL: an error when the model was asked for by name, a skip when it
    only came with ``--sketch-models=all`` (like an API model without its key)."""


class ModelFailure(SketchBenchError):
    """An exception that is not ours (a runtime, numpy, a user's plugin) raised while one model ran.

    Recorded on the model's result as one line — type, first line of the message, where — so that no
    report can show the model as passed; the full traceback stays reachable with ``--tb=long``.
    """

    @classmethod
    def from_exception(cls, model: str, stage: str, exc: BaseException) -> ModelFailure:
        import traceback
        from pathlib import Path

        lines = str(exc).strip().splitlines()
        first = redact(lines[0] if lines else "")[:300]
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        return cls(f"model '{model}'", f"{stage} raised {type(exc).__name__}: {first}{where}",
                   "see the full traceback with --tb=long")


class PartnerFailure(Exception):
    """A model timed beside another (its side-by-side partner) raised: the failure is the partner's, never the
    model's it was compared with (not a SketchBenchError, so the model's guard lets it through unrecorded)."""

    def __init__(self, partner: str, cause: BaseException):
        super().__init__(f"{partner}: {type(cause).__name__}")
        self.partner, self.cause = partner, cause


class ModelTimeout(SketchBenchError):
    """A model's load, accuracy pass or timing ran past its ``timeout_s``."""


_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """A value (an API key) that must never reach a report, log or test output."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by a marker, and made inert (:func:`inert`)."""
    for secret in _SECRETS:
        text = text.replace(secret, "[redacted]")
    return inert(text)


# C0 and C1 control characters and DEL: a server's or a file's text that carries them could erase a line of the
# terminal, forge a green "passed", retitle the window (ANSI/OSC escapes), or break a one-line message
_CONTROL: dict[int, str | None] = {code: None for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\t"): " ", ord("\n"): " ", ord("\r"): " "})


def inert(text: str) -> str:
    """Text from outside (a server, a runtime, a file) as one inert line: control characters dropped, line
    breaks and tabs turned into spaces."""
    return text.translate(_CONTROL) if isinstance(text, str) else text
