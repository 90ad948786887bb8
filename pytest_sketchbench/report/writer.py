"""Write every requested report at the end of a run — also after failures, Ctrl-C and SIGTERM.

Each report is rendered on its own (one that fails does not stop the others) and staged; the staged
files are then renamed into place together (:mod:`.outputs`). What could not be written is returned,
so that the run's exit status and summary say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_sketchbench.session import SketchSession

from collections.abc import Callable

import pytest

from pytest_sketchbench import hardware
from pytest_sketchbench.baseline import baseline_bytes, build_baseline
from pytest_sketchbench.files import StagedFiles
from pytest_sketchbench.host_audit import audit_line
from pytest_sketchbench.report.analysis import speed_index_text
from pytest_sketchbench.report.html_report import standalone_html
from pytest_sketchbench.report.json_report import build_report, json_text
from pytest_sketchbench.report.tables import report_dir_files


def write_reports(config: pytest.Config, sketch: SketchSession, exitstatus: int, interrupted: bool) -> list[str]:
    """Write the requested reports; returns one line per report that could not be written."""
    wanted = [config.getoption(name) for name in ("sketch_save_baseline", "sketch_json", "sketch_html",
                                                  "sketch_report_dir", "sketch_history")]
    if sketch.results and not interrupted and (any(wanted) or sketch.baseline):
        # measured once, after every model, only for a file or a baseline that quotes it (two reports from two
        # machines then compare); a run that writes nothing does not pay its 1,100 calibration calls
        sketch.speed_index()
    files, failures = StagedFiles(), []

    def stage(what: str, path: object, render: Callable[[], dict[Path, str | bytes]]) -> None:
        try:
            for target, data in render().items():
                files.add(target, data)
        except Exception as exc:  # noqa: BLE001 — every writer is independent of the others
            failures.append(f"{what} not written to {path}: {exc}")

    save_path = config.getoption("sketch_save_baseline")
    if save_path and sketch.results:
        stage("baseline", save_path, lambda: {save_path: baseline_bytes(build_baseline(sketch))})
    json_path = config.getoption("sketch_json")
    html_path = config.getoption("sketch_html")
    report_dir = config.getoption("sketch_report_dir")
    report = None
    if json_path or html_path or report_dir:
        try:
            report = build_report(sketch, exitstatus, interrupted)
        except Exception as exc:  # noqa: BLE001 — the baseline, if asked for, is still written
            failures.append(f"JSON/HTML/report dir not written: the report could not be built ({exc})")
    if report is not None:
        if json_path:
            stage("JSON report", json_path, lambda: {json_path: json_text(report)})
        if html_path:
            images = None if sketch.loaded_dataset is None else sketch.loaded_dataset.images
            stage("HTML report", html_path, lambda: {html_path: standalone_html(report, sketch.results, images)})
        if report_dir:
            line = (hardware.summary_line(sketch.hardware, sketch.profile)
                    + speed_index_text(sketch.measured_speed_index) + "; " + audit_line(sketch.host_audit()))
            stage("report dir", report_dir, lambda: report_dir_files(
                report_dir, sketch.results, report["comparison_analysis"], report.get("comparison_to_baseline"), line,
                report["benchmark_metadata"]["notes"]))
    try:
        written = files.commit()
    except OSError as exc:
        files.discard()
        written, failures = [], [*failures, f"reports not written: {exc}"]
    for path in _shown(written, report_dir):
        sketch.notes.append(f"report written: {path}")
    return failures


def _shown(written: list[str], report_dir: object) -> list[str]:
    """The files written, with the report dir's many files shown as the folder once."""
    inside = [p for p in written if report_dir and p.startswith(str(report_dir).rstrip("/") + "/")]
    return [p for p in written if p not in inside] + ([str(report_dir)] if inside else [])
