"""HTML: a standalone self-contained report, and the pytest-html integration.

The standalone page has no external resources (inline CSS, base64 PNGs), so it opens offline
and survives being attached to a CI run.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pytest_sketchbench.codec import baseline_rows_in, category_table_of
from pytest_sketchbench.host_audit import audit_line
from pytest_sketchbench.options import model_of
from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import (
    category_mapping_text,
    extreme_categories,
    failed_check_details,
    fmt,
    speed_index_text,
)
from pytest_sketchbench.report.html_sections import category_heatmap, machines_table, model_details, pairs_table
from pytest_sketchbench.report.tables import result_row
from pytest_sketchbench.results import BaselineRow, ModelResult

if TYPE_CHECKING:
    from pytest_sketchbench.session import SketchSession

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;font-size:.9rem}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00020;font-weight:600}.pass{color:#1b7f3a}.skip{color:#8a6d00}.unsure{color:#a15c00;font-weight:600}.measured{color:#3b5b8c}.note{color:#555;font-size:.9rem}
img{max-width:100%;height:auto}.grid{display:flex;flex-wrap:wrap;gap:1rem}
figure.drawing{margin:0;font-size:.8rem;text-align:center}figure.drawing img{border:1px solid #ccc}
"""


STATUS_CLASS = {"passed": "pass", "failed": "fail", "error": "fail", "inconclusive": "unsure", "measured": "measured",
                "skipped": "skip", "not run": "skip"}
BASELINE_CLASS = {"regression": "fail", "inconclusive": "unsure", "missing": "fail"}
VERDICT_CLASS = {"passed": "pass", "failed": "fail", "inconclusive": "unsure", "measured": "measured"}


def _e(value: object) -> str:
    return "—" if value is None else html.escape(str(value))


def _img(png: bytes | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{charts.data_uri(png)}">' if png else ""


def summary_table(results: dict[str, ModelResult]) -> str:
    head = ("<tr><th>model</th><th>status</th><th>runtime</th><th>accuracy</th><th>95% CI</th><th>top-5</th>"
            "<th>macro F1</th><th>p50 @1 (ms)</th><th>p95 @1 (ms)</th><th>throughput (/s, at the largest batch)</th>"
            "<th>memory (MB)</th><th>failed checks: measured vs limit</th></tr>")
    rows = []
    for model, record in results.items():
        r = result_row(model, record)
        ci = f"{r['ci95_low']:.3f}–{r['ci95_high']:.3f}" if r["ci95_low"] is not None else "—"
        throughput = (f"{r['throughput_per_s']:,.0f} @{r['throughput_batch']}"
                      if r["throughput_per_s"] is not None else "—")
        problems = ([_e(m) for m in failed_check_details(record)]
                    + [f"error: {_e(e)}" for e in record.errors]
                    + [f"skipped: {_e(reason)}" for reason in record.skipped])
        status = r["status"]
        rows.append(f"<tr class='model-row' data-model='{_e(model)}' data-status='{status}'><td>{_e(model)}</td>"
                    f"<td class='status {STATUS_CLASS[status]}'>{status}</td>"
                    f"<td>{_e(r['runtime'])}</td><td class=num>{fmt(r['accuracy'])}</td><td class=num>{ci}</td>"
                    f"<td class=num>{fmt(r['top5_accuracy'])}</td><td class=num>{fmt(r['macro_f1'])}</td>"
                    f"<td class=num>{fmt(r['p50_ms_batch1'])}</td><td class=num>{fmt(r['p95_ms_batch1'])}</td>"
                    f"<td class=num>{throughput}</td><td class=num>{fmt(r['peak_memory_growth_mb'], '.0f')}</td>"
                    f"<td>{'<br>'.join(problems) or '—'}</td></tr>")
    return f"<table id='summary'>{head}{''.join(rows)}</table>"


def timing_table(record: ModelResult) -> str:
    rows = "".join(
        f"<tr><td class=num>{b}</td><td class=num>{s.mean_ms:.3f}</td><td class=num>{s.median_ms:.3f}</td>"
        f"<td class=num>{s.p90_ms:.3f}</td><td class=num>{s.p95_ms:.3f}</td><td class=num>{s.p99_ms:.3f}</td>"
        f"<td class=num>{s.stddev_ms:.3f}</td><td class=num>{s.throughput_per_s:,.0f}</td>"
        f"<td class=num>{s.rounds}</td><td>{_e(s.timer)}</td></tr>"
        for b, s in sorted(record.timing.items()))
    if not rows:
        return ""
    return ("<table><tr><th>batch</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>stddev</th>"
            f"<th>drawings/s</th><th>rounds</th><th>timer</th></tr>{rows}</table>")


def model_section(model: str, record: ModelResult, images: np.ndarray | None = None) -> str:
    parts = [f"<section class='model' id='model-{_e(model)}'><h2>{_e(model)}</h2>"]
    for error in record.errors:
        parts.append(f"<p class=fail>error: {_e(error)}</p>")
    accuracy = record.accuracy
    if accuracy:
        best, worst = extreme_categories(accuracy, 5)
        parts.append("<p>best: " + ", ".join(f"{_e(c)} {a:.3f}" for c, a in best) + "<br>worst: "
                     + ", ".join(f"{_e(c)} {a:.3f}" for c, a in worst) + "</p>")
        mapping = category_mapping_text(record)
        if mapping:
            parts.append(f"<p class=note>{_e(mapping)}</p>")
        if accuracy.accuracy_by_rendering:
            by = accuracy.accuracy_by_rendering
            parts.append(f"<p class=note>accuracy on exact rows {fmt(by.get('exact'))}, on approximate renders "
                         f"{fmt(by.get('approximate'))}</p>")
        parts.append("<div class=grid>" + _img(charts.confusion_png(accuracy, f"{model}: confusion"),
                                               f"{model} confusion matrix")
                     + _img(charts.category_accuracy_png(accuracy, f"{model}: accuracy per category",
                                                         record.category_limits),
                            f"{model} per-category accuracy") + "</div>")
    parts.append(model_details(record, images))
    parts.append(timing_table(record))
    parts.append(_img(charts.latency_png(model, record.timing), f"{model} latency distribution"))
    figures = accuracy.calibration if accuracy else None
    if figures is not None:
        parts.append(_img(charts.reliability_png(model, figures.reliability, figures.binning),
                          f"{model} reliability diagram"))
    if record.verdicts:
        items = "".join(f"<li class={VERDICT_CLASS[v.outcome]}>{'measured, not gated: ' * (v.outcome == 'measured')}"
                        f"{_e(v.message)}</li>" for v in record.verdicts)
        parts.append(f"<h3>threshold checks</h3><ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def _comparison_line(summary: dict[str, Any], models: int) -> str:
    """Best accuracy, fastest, most consistent — said only where there is something to compare."""
    if models < 2:
        return "<p id='comparison' class=note>one model in this run: nothing to compare it with</p>"
    return (f"<p id='comparison'>best accuracy: <b>{_e(summary['best_accuracy'])}</b> · fastest: "
            f"<b>{_e(summary['fastest'])}</b> · most consistent: <b>{_e(summary['most_consistent'])}</b></p>")


def hardware_section(metadata: dict[str, Any]) -> str:
    hw = metadata.get("hardware", {})
    cpu = hw.get("cpu", {})
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in hw.get("gpus", [])) or "none"
    versions = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
                       for k, v in metadata.get("library_versions", {}).items())
    return (f"<h2>hardware and versions</h2><p id='hardware'>profile <b>{_e(metadata.get('device_profile'))}</b>; "
            f"CPU {_e(cpu.get('model'))} ({_e(cpu.get('physical_cores'))} cores, {_e(cpu.get('memory_gib'))} GiB); "
            f"GPUs: {_e(gpus)}; environment {_e(hw.get('environment'))}"
            f"{_e(speed_index_text(metadata.get('machine_speed_index')))}</p><table>{versions}</table>")


def _baseline_row(row: BaselineRow) -> str:
    before, now, change, p_value = row.cells()
    return (f"<tr><td>{_e(row.model)}</td><td>{_e(row.metric)}</td><td>{_e(before)}</td><td>{_e(now)}</td>"
            f"<td>{_e(change)}</td><td>{_e(p_value or '—')} {_e(row.p_test or '')}</td>"
            f"<td class={BASELINE_CLASS.get(row.verdict, 'pass')}>{_e(row.verdict)}</td></tr>")


def standalone_html(report: dict[str, Any], results: dict[str, ModelResult], images: np.ndarray | None = None) -> str:
    """The whole page; ``images`` (the test set's drawings) lets parity disagreements be shown as drawings."""
    metadata = report["benchmark_metadata"]
    summary = report["comparison_analysis"]  # every report has the run's one comparison (schema.json requires it)
    points = [(m, r.timing[1].median_ms, r.accuracy.accuracy) for m, r in results.items()
              if r.accuracy and 1 in r.timing]
    variance = "".join(f"<li>{_e(v['category'])}: variance {v['variance']:.4f}</li>"
                       for v in summary["category_variance"])
    notes = "".join(f"<li>{_e(n)}</li>" for n in metadata.get("notes", []))
    if not charts.available() and charts.MISSING_NOTE not in metadata.get("notes", []):  # once, not twice
        notes += f"<li class=fail>{_e(charts.MISSING_NOTE)}</li>"
    baseline = report.get("comparison_to_baseline")
    baseline_html = ""
    if baseline:
        rows = "".join(_baseline_row(row) for row in baseline_rows_in(baseline.get("rows")))
        index = speed_index_text(metadata.get("machine_speed_index"), baseline.get("baseline_machine_speed_index"))
        baseline_html = (f"<h2>compared with the baseline</h2><p class=note>{_e(index.lstrip('; '))}</p>"
                         "<table id='baseline'><tr><th>model</th><th>metric</th>"
                         "<th>baseline</th><th>current</th><th>change</th><th>p-value (test)</th><th>verdict</th></tr>"
                         f"{rows}</table>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="sketchbench-run-id" content="{_e(metadata.get('run_id', ''))}">
<title>sketchbench report</title><style>{STYLE}</style></head>
<body><h1>sketchbench report</h1>
<p class=note>{_e(metadata['timestamp'])} · commit {_e(metadata.get('git_commit') or 'unknown')} ·
{metadata['test_samples']:,} drawings in {len(metadata['categories'])} categories ·
{'<b class=fail>interrupted</b> · ' if metadata.get('interrupted') else ''}exit status {metadata.get('exit_status')}</p>
<p class=note id='host-audit'>{_e(audit_line(metadata['host_audit']) if metadata.get('host_audit') else 'no audit')} ·
checks: {_e(', '.join(f"{n} {k}" for k, n in (metadata.get('verdict_counts') or {}).items()))}
(inconclusive → {_e(metadata.get('inconclusive_policy') or 'skip')})</p>
<h2>summary</h2>{summary_table(results)}
<h2>comparison</h2>{_comparison_line(summary, len(results))}
{_img(charts.scatter_png(points), 'accuracy vs latency')}
{machines_table(report.get("speed_by_machine") or [])}
{pairs_table(summary)}
{category_heatmap(category_table_of(summary.get("category_by_model") or {}))}
{'<p>categories the models disagree on most:</p><ul>' + variance + '</ul>' if variance else ''}
{baseline_html}
{''.join(model_section(m, r, images) for m, r in results.items())}
{hardware_section(metadata)}
{'<h2>notes</h2><ul>' + notes + '</ul>' if notes else ''}
</body></html>"""


TIMED_BEFORE = pytest.StashKey[set[int]]()


class PytestHtmlHooks:
    """Registered only when pytest-html is active: figures in each row, charts and a summary on top."""

    def __init__(self, sketch: SketchSession) -> None:
        self.sketch = sketch
        self.charted: set[str] = set()

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        if self.sketch.results:
            prefix.append(f"<h2>sketchbench</h2>{summary_table(self.sketch.results)}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Note the batch sizes timed before this test, so its row can show what *it* timed."""
        model = model_of(item)
        record = self.sketch.results.get(model) if model else None
        item.stash[TIMED_BEFORE] = set(record.timing) if record else set()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        model = model_of(item)
        record = self.sketch.results.get(model) if model else None
        if report.when != "call" or record is None or model is None:
            return report
        import pytest_html

        extras = list(getattr(report, "extras", []))
        messages = [v.message for v in record.verdicts if v.test == item.nodeid]
        if messages:
            items = "".join(f"<li>{_e(m)}</li>" for m in messages)
            extras.append(pytest_html.extras.html(f"<ul class='sketch-figures'>{items}</ul>"))
        accuracy = record.accuracy
        if accuracy and model not in self.charted:  # once per model: the first accuracy test's row
            self.charted.add(model)
            for png in (charts.confusion_png(accuracy, f"{model}: confusion"),
                        charts.category_accuracy_png(accuracy, f"{model}: accuracy per category",
                                                     record.category_limits)):
                if png:
                    extras.append(pytest_html.extras.png(base64.b64encode(png).decode("ascii")))
        timing = record.timing
        timed_here = {b: t for b, t in timing.items() if b not in item.stash.get(TIMED_BEFORE, set(timing))}
        batch = getattr(getattr(item, "callspec", None), "params", {}).get("sketch_batch_size")
        if batch in timing:  # its batch size, also when an earlier test timed it and this one reused it
            timed_here[batch] = timing[batch]
        if timed_here:  # a latency test's row: the distribution it measured
            png = charts.latency_png(model, timed_here)
            if png:
                extras.append(pytest_html.extras.png(base64.b64encode(png).decode("ascii")))
        report.extras = extras  # type: ignore[attr-defined]  # pytest-html reads it
        return report
