"""One error type for everything a user can fix: it names the thing and the fix."""

from __future__ import annotations


class SketchBenchError(Exception):
    """A problem with the user's input (data, model file, config), stated as one actionable line."""

    def __init__(self, subject: str, problem: str, fix: str = ""):
        self.subject, self.problem, self.fix = subject, problem, fix
        message = f"{subject}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)


class ModelOutputError(SketchBenchError):
    """A model produced outputs that cannot be probabilities (NaN, inf, wrong shape)."""


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


class ModelTimeout(SketchBenchError):
    """A model's load, accuracy pass or timing ran past its ``timeout_s``."""


_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """A value (an API key) that must never reach a report, log or test output."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by a marker."""
    for secret in _SECRETS:
        text = text.replace(secret, "[redacted]")
    return text
