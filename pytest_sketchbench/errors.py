"""One error type for everything a user can fix: it names the thing and the fix."""


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
