"""``sketchbench history``: the results store across commits.

    sketchbench history add RUN.json... --db PATH_OR_URL [--commit SHA] [--branch NAME] [--status STATUS]
    sketchbench history check --db PATH_OR_URL [--config thresholds.toml] [--branch NAME...]
    sketchbench history show --db PATH_OR_URL [--html OUT] [--markdown OUT] [--config …] [--branch NAME...]

``add`` imports JSON reports (older ones too: backfill from CI artifacts); a report stored before is skipped.
``check`` exits 1 when a followed series holds a regression in its newest runs (``[history]`` says which series,
how large a change counts and how new), 0 otherwise. ``--branch`` reads those branches' runs together (a
feature branch checked against main's history: ``--branch main feature``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from pytest_sketchbench.codec import record_from_result
from pytest_sketchbench.config import load_config
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.hardware import machine_label
from pytest_sketchbench.history.analysis import Finding, HistorySettings, analyse, news, settings_from
from pytest_sketchbench.history.points import Point, points_of
from pytest_sketchbench.history.recording import run_status
from pytest_sketchbench.history.store import Run, SeriesKey, SeriesPoint, open_store, shown


def run_of_report(path: str, report: dict[str, Any], commit: str | None, branch: str | None,
                  status: str | None) -> tuple[Run, list[Point]]:
    metadata = report["benchmark_metadata"]
    records = [record_from_result(name, result) for name, result in report["model_results"].items()]
    index = (metadata.get("machine_speed_index") or {}).get("calls_per_s")
    run = Run(run_id=str(metadata.get("run_id") or uuid.uuid5(uuid.NAMESPACE_URL, str(Path(path).resolve()))),
              commit=commit or metadata.get("git_commit"), branch=branch,
              created=str(metadata.get("timestamp") or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
              machine=machine_label(metadata.get("hardware") or {}, metadata.get("device_profile")),
              speed_index=index, host=metadata.get("host_audit") or {},
              status=status or run_status(metadata.get("exit_status"), bool(metadata.get("interrupted")), records),
              source=path)
    return run, [point for record in records for point in points_of(record)]


def history_settings(config_path: str | None) -> HistorySettings:
    path = Path(config_path) if config_path else Path("thresholds.toml")
    if config_path and not path.exists():
        raise SketchBenchError(config_path, "config file not found", "pass the project's thresholds.toml")
    config = load_config(path if path.exists() else None)
    return settings_from(config.history, str(path))


def add(args: argparse.Namespace) -> int:
    from pytest_sketchbench.cli import read_report

    store = open_store(args.db)
    try:
        for path in args.runs:
            run, points = run_of_report(path, read_report(path), args.commit, args.branch, args.status)
            added = store.add_run(run, points)
            print(f"{path}: {'added' if added else 'already stored'} as run {run.run_id[:12]} ({run.status}, "
                  f"{len(points)} figures, commit {(run.commit or '?')[:12]}) to {shown(args.db)}")
    finally:
        store.close()
    return 0


def _analysed(args: argparse.Namespace) -> tuple[HistorySettings, dict[SeriesKey, list[SeriesPoint]], list[Run],
                                                  list[Finding]]:
    """The store's series and runs (of ``--branch``) and every change in them, under ``[history]``."""
    settings = history_settings(args.config)
    store = open_store(args.db)
    try:
        series, runs = store.series(args.branch), store.runs(args.branch)
    finally:
        store.close()
    return settings, series, runs, analyse(series, settings)


def check(args: argparse.Namespace) -> int:
    settings, series, runs, findings = _analysed(args)
    failing = news(findings, settings)
    print(f"{shown(args.db)}: {len(runs)} complete runs, {sum(settings.follows(k[1]) for k in series)} followed "
          f"series, {len(findings)} changes")
    for finding in failing:
        print(f"REGRESSION {finding.describe()}")
    if not failing:
        print(f"no regression in the newest {settings.newest} runs")
    return 1 if failing else 0


def show(args: argparse.Namespace) -> int:
    from pytest_sketchbench.files import StagedFiles
    from pytest_sketchbench.report.trend_page import followed_series, trend_html, trend_markdown

    settings, series, runs, findings = _analysed(args)
    title = f"sketchbench history: {len(runs)} runs" + (f" of {', '.join(args.branch)}" if args.branch else "")
    files = StagedFiles()
    if args.html:
        files.add(args.html, trend_html(series, findings, followed_series(series, settings.follows), title))
    markdown = trend_markdown(findings, len(runs), title, news(findings, settings))
    if args.markdown:
        files.add(args.markdown, markdown)
    for path in files.commit():
        print(f"written: {path}")
    print(markdown, end="")
    return 0


def add_parser(commands: Any) -> None:
    history = commands.add_parser("history", help="the results store across commits: add runs, check, show")
    verbs = history.add_subparsers(dest="verb", required=True)
    added = verbs.add_parser("add", help="import JSON reports into the store")
    added.add_argument("runs", nargs="+", metavar="RUN.json")
    added.add_argument("--commit", help="the commit measured (default: the report's)")
    added.add_argument("--branch", help="the branch it belongs to")
    added.add_argument("--status", choices=("complete", "interrupted", "errored"),
                       help="override the status read from the report")
    checked = verbs.add_parser("check", help="exit 1 on a regression in the newest runs")
    shown_page = verbs.add_parser("show", help="an HTML trend page and a Markdown summary")
    shown_page.add_argument("--html", metavar="OUT")
    shown_page.add_argument("--markdown", metavar="OUT")
    for verb in (added, checked, shown_page):
        verb.add_argument("--db", required=True, metavar="PATH_OR_URL",
                          help="a SQLite file (created if missing) or a postgresql:// URL")
    for verb in (checked, shown_page):
        verb.add_argument("--config", help="the thresholds.toml whose [history] table to use "
                                           "(default: ./thresholds.toml)")
        verb.add_argument("--branch", nargs="+", help="read these branches' runs (default: every run)")


def run(args: argparse.Namespace) -> int:
    return {"add": add, "check": check, "show": show}[args.verb](args)
