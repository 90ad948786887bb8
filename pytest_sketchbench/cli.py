"""``sketchbench``: JSON reports after the run, without pytest — merge runs from several machines, compare
two runs like ``--sketch-baseline`` does, re-render a report.

    sketchbench merge RUN.json... [--json OUT] [--html OUT] [--report-dir DIR]
    sketchbench compare BASE.json NEW.json [--config thresholds.toml] [--json OUT]
    sketchbench report RUN.json [--html OUT] [--report-dir DIR]
    sketchbench history add|check|show …   (the results store across commits: see history_cli)
    sketchbench bisect GOOD BAD -- <pytest args>   (the first commit whose gate fails: see bisect_cli)

Exit codes follow the gates, so a CI job can gate on them: 0 when every model passed (or was skipped, or was
inconclusive under the runs' default policy) and nothing disagrees; 1 when a model failed or erred, runs
disagree, a gated regression was found, a model of the base run is missing or was not measured in the new
one, or a model was inconclusive in a run whose policy was ``fail``; 2 for a usage error (a missing or foreign
file, runs on different test sets), said in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pytest_sketchbench.errors import SketchBenchError

FAILED_STATUSES = ("failed", "error")


def read_report(path: str) -> dict:
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SketchBenchError(path, "file not found", "pass a report written by --sketch-json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SketchBenchError(path, f"not readable as JSON ({exc.__class__.__name__})",
                               "pass a report written by --sketch-json") from None
    from pytest_sketchbench.report.merge import check_reports

    check_reports([(path, report)])
    return report


def write_outputs(report: dict, records: dict, args) -> list[str]:
    """The JSON, HTML and report-dir files asked for, staged and renamed together like a run's reports."""
    from pytest_sketchbench.files import StagedFiles, check_output_paths
    from pytest_sketchbench.report.html_report import standalone_html
    from pytest_sketchbench.report.json_report import json_text
    from pytest_sketchbench.report.tables import report_dir_files

    targets = {"--json": getattr(args, "json", None), "--html": args.html, "--report-dir": args.report_dir}
    check_output_paths(targets)
    files = StagedFiles()
    if targets["--json"]:
        files.add(targets["--json"], json_text(report))
    if args.html:
        files.add(args.html, standalone_html(report, records))
    if args.report_dir:
        metadata = report["benchmark_metadata"]
        for path, data in report_dir_files(args.report_dir, records, report["comparison_analysis"],
                                           report.get("comparison_to_baseline"), metadata.get("merged_label", ""),
                                           metadata.get("notes")).items():
            files.add(path, data)
    return files.commit()


def _assemble(metadata: dict, records: dict) -> dict:
    import numpy as np

    from pytest_sketchbench.codec import FORMAT_VERSION, model_result
    from pytest_sketchbench.report.analysis import comparison, model_status
    from pytest_sketchbench.report.json_report import json_safe

    labels = (metadata.get("dataset") or {}).get("labels")
    return json_safe({"format_version": FORMAT_VERSION, "benchmark_metadata": metadata,
                   "model_results": {name: model_result(record, model_status(record))
                                     for name, record in records.items()},
                   "comparison_analysis": comparison(records, None if labels is None else np.asarray(labels))})


def merge(args) -> int:
    from pytest_sketchbench.report.merge import merge_reports, speed_rows

    metadata, records, problems = merge_reports([(path, read_report(path)) for path in args.runs])
    machines = sorted({run["hardware"] for run in metadata["merged_from"]})
    metadata["merged_label"] = f"merged from {len(args.runs)} runs on {len(machines)} machine(s): {', '.join(machines)}"
    report = _assemble(metadata, records)
    report["speed_by_machine"] = speed_rows(records)
    for path in write_outputs(report, records, args):
        print(f"written: {path}")
    return _summarise(records, problems, metadata["merged_label"], report["speed_by_machine"],
                      metadata.get("inconclusive_policy") or "skip")


def _summarise(records: dict, problems: list[str], title: str, speed: list[dict] | None = None,
               inconclusive_policy: str = "skip") -> int:
    from pytest_sketchbench.report.analysis import model_status

    print(title)
    statuses = {key: model_status(record) for key, record in records.items()}
    for key, record in records.items():
        shown = f"acc {record.accuracy.accuracy:.4f}" if record.accuracy else "no accuracy"
        print(f"  {key:<40} {statuses[key]:<8} {shown}")
    for row in speed or []:
        units = f" = {row['calibration_calls']:.1f} calibration calls" if row["calibration_calls"] else ""
        index = f" (speed index {row['speed_index']:,.0f}/s)" if row["speed_index"] else ""
        print(f"  speed {row['model']:<12} {row['machine']:<28} p50 {row['p50_ms']:.3f} ms{index}{units}")
    for problem in problems:
        print(f"error: {problem}")
    failed = [key for key, status in statuses.items() if status in FAILED_STATUSES]
    if failed:
        print(f"failed or erred: {', '.join(failed)}")
    unsure = [key for key, status in statuses.items() if status == "inconclusive"]
    if unsure:
        print(f"inconclusive: {', '.join(unsure)} (the runs' policy: {inconclusive_policy})")
    return 1 if failed or problems or (unsure and inconclusive_policy == "fail") else 0


def compare(args) -> int:
    from pytest_sketchbench.codec import FORMAT_VERSION, baseline_rows_out
    from pytest_sketchbench.report.run_comparison import compare_reports

    settings = {}
    config = args.config or ("thresholds.toml" if Path("thresholds.toml").is_file() else None)
    if config:  # the [baseline] settings the gate used, so that the verdicts are the gate's
        from pytest_sketchbench.config import load_config

        settings = load_config(Path(config)).baseline
    print(f"[baseline] settings from {config or 'the defaults (no --config, no ./thresholds.toml)'}")
    rows = compare_reports((args.base, read_report(args.base)), (args.new, read_report(args.new)), settings)
    for row in rows:
        print(f"  {row.line()}" + (" [gated]" if row.gated else ""))
    regressions = [row for row in rows if row.verdict == "regression" and row.gated]
    vanished = [row for row in rows if row.verdict == "missing"]
    if args.json:
        from pytest_sketchbench.files import StagedFiles, check_output_paths

        check_output_paths({"--json": args.json})
        files = StagedFiles()
        files.add(args.json, json.dumps({"format_version": FORMAT_VERSION, "baseline": args.base, "current": args.new,
                                         "rows": baseline_rows_out(rows),
                                         "regressions": sum(row.verdict == "regression" for row in rows),
                                         "missing": len(vanished)}, indent=1))
        print(f"written: {files.commit()[0]}")
    for row in vanished:
        print(f"error: {row.model} {row.change} (measured in {args.base})")
    print(f"{len(regressions)} gated regression(s), {len(vanished)} model(s) missing or not measured "
          f"against {args.base}")
    return 1 if regressions or vanished else 0


def report(args) -> int:
    from pytest_sketchbench.codec import baseline_rows_in, baseline_rows_out, record_from_result

    source = read_report(args.run)
    records = {name: record_from_result(name, result) for name, result in source["model_results"].items()}
    metadata = dict(source["benchmark_metadata"])
    rendered = _assemble(metadata, records)
    if source.get("comparison_to_baseline"):  # rows of an older format come back as numbers
        compared = source["comparison_to_baseline"]
        rendered["comparison_to_baseline"] = {**compared, "rows": baseline_rows_out(baseline_rows_in(compared["rows"]))}
    for path in write_outputs(rendered, records, args):
        print(f"written: {path}")
    return _summarise(records, [], f"{args.run}: {len(records)} model(s)", None,
                      metadata.get("inconclusive_policy") or "skip")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="sketchbench", description="sketchbench JSON reports after the run: merge "
                                   "runs from several machines, compare two runs, re-render a report")
    commands = main.add_subparsers(dest="command", required=True)
    merged = commands.add_parser("merge", help="combine runs from several machines into one report")
    merged.add_argument("runs", nargs="+", metavar="RUN.json")
    compared = commands.add_parser("compare", help="the --sketch-baseline verdicts between two runs")
    compared.add_argument("base", metavar="BASE.json")
    compared.add_argument("new", metavar="NEW.json")
    compared.add_argument("--config", help="a thresholds.toml whose [baseline] settings to use "
                                           "(default: ./thresholds.toml where there is one)")
    rendered = commands.add_parser("report", help="re-render a run's report")
    rendered.add_argument("run", metavar="RUN.json")
    for command in (merged, compared):
        command.add_argument("--json", metavar="OUT")
    for command in (merged, rendered):
        command.add_argument("--html", metavar="OUT")
        command.add_argument("--report-dir", metavar="DIR")
    from pytest_sketchbench import bisect_cli, history_cli

    history_cli.add_parser(commands)
    bisect_cli.add_parser(commands)
    return main


def main(argv: list[str] | None = None) -> int:
    from pytest_sketchbench.bisect_cli import split_pytest_args

    ours, pytest_args = split_pytest_args(list(sys.argv[1:] if argv is None else argv))
    args = parser().parse_args(ours)
    args.pytest_args = pytest_args
    try:
        if args.command in ("history", "bisect"):
            from pytest_sketchbench import bisect_cli, history_cli

            return history_cli.run(args) if args.command == "history" else bisect_cli.bisect(args)
        return {"merge": merge, "compare": compare, "report": report}[args.command](args)
    except SketchBenchError as exc:
        print(f"sketchbench {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
