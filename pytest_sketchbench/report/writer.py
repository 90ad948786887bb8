"""Write every requested report at the end of a run — also after failures and Ctrl-C."""

from __future__ import annotations

import pytest

from pytest_sketchbench import hardware
from pytest_sketchbench.baseline import build_baseline, save_baseline
from pytest_sketchbench.report.analysis import speed_index_text
from pytest_sketchbench.report.html_report import write_html
from pytest_sketchbench.report.json_report import build_report, write_json
from pytest_sketchbench.report.tables import write_report_dir


def write_reports(config: pytest.Config, sketch, exitstatus: int, interrupted: bool) -> list[str]:
    written = []
    if sketch.results and not interrupted:
        sketch.speed_index()  # measured once, after every model: two reports from two machines then compare
    save_path = config.getoption("sketch_save_baseline")
    if save_path and sketch.results:
        written.append(str(save_baseline(build_baseline(sketch), save_path)))
    json_path = config.getoption("sketch_json")
    html_path = config.getoption("sketch_html")
    report_dir = config.getoption("sketch_report_dir")
    if json_path or html_path or report_dir:
        written += _write_results(sketch, exitstatus, interrupted, json_path, html_path, report_dir)
    sketch.notes.extend(f"report written: {path}" for path in written)
    return written


def _write_results(sketch, exitstatus, interrupted, json_path, html_path, report_dir) -> list[str]:
    report = build_report(sketch, exitstatus, interrupted)
    written = []
    if json_path:
        written.append(str(write_json(report, json_path)))
    if html_path:
        written.append(str(write_html(report, sketch.results, html_path)))
    if report_dir:
        line = hardware.summary_line(sketch.hardware, sketch.profile) + speed_index_text(sketch.measured_speed_index)
        written.append(str(write_report_dir(report_dir, sketch.results, report.get("comparison_to_baseline"), line,
                                            report["benchmark_metadata"]["notes"])))
    return written
