"""A finished run into the history (``--sketch-history``), and the same gate as ``sketchbench history check``
(``--sketch-history-check``) at the end of the run."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_sketchbench.history.analysis import analyse, news, settings_from
from pytest_sketchbench.history.points import points_of
from pytest_sketchbench.history.store import Run, open_store, shown
from pytest_sketchbench.results import ModelResult


def run_status(exit_status: int | None, interrupted: bool, records: Sequence[ModelResult]) -> str:
    """complete, interrupted (Ctrl-C, pytest's own error) or errored (a model erred, pytest could not run the
    tests): only complete runs are analysed; the others are kept, flagged."""
    if interrupted or exit_status == 2:
        return "interrupted"
    if exit_status not in (None, 0, 1) or any(record.errors for record in records):
        return "errored"
    return "complete"


def current_branch(root: Path) -> str | None:
    """The branch CI names (a pull request's head first), else git's."""
    for variable in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        out = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def keep_run(target: str, run: Run, records: Sequence[ModelResult], check: bool, history_table: dict[str, Any],
             config_path: str, base: str | None) -> tuple[list[str], list[str]]:
    """Add the run, then (``check``) judge its branch's history with ``base``'s: (notes, regressions)."""
    store = open_store(target)
    try:
        points = [point for record in records for point in points_of(record)]
        added = store.add_run(run, points)
        notes = [f"history: run {'added to' if added else 'already in'} {shown(target)} ({run.status}, "
                 f"{len(points)} figures, branch {run.branch or '?'})"]
        if run.status != "complete":
            notes.append(f"history: this run is stored as {run.status} and left out of every trend")
        if not check:
            return notes, []
        settings = settings_from(history_table, config_path)
        branches = [b for b in dict.fromkeys([base, run.branch]) if b] or None
        failing = news(analyse(store.series(branches), settings), settings)
        return notes, [f"history: REGRESSION {finding.describe()}" for finding in failing]
    finally:
        store.close()


def run_of_session(sketch: Any, exit_status: int, interrupted: bool) -> Run:
    """This pytest run as a history row: commit, branch, time, machine, speed index and the host audit."""
    from pytest_sketchbench.hardware import git_commit, machine_label

    index = (sketch.measured_speed_index or {}).get("calls_per_s")
    return Run(run_id=uuid.uuid4().hex, commit=git_commit(sketch.rootdir), branch=current_branch(sketch.rootdir),
               created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               machine=machine_label(sketch.hardware, sketch.profile), speed_index=index, host=sketch.host_audit(),
               status=run_status(exit_status, interrupted, list(sketch.results.values())))

