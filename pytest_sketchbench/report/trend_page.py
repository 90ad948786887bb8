"""The history as a page: one chart per followed model × metric over the runs, with each run's interval, the
changes found marked with their commit, and the runs where the model's files changed. Self-contained (inline
PNGs, no script, no external resource), so it opens offline. And the same findings as Markdown, for a CI step
summary."""

from __future__ import annotations

import html
from typing import Any

from pytest_sketchbench.history.analysis import Finding, content_changes
from pytest_sketchbench.history.store import SeriesKey, SeriesPoint
from pytest_sketchbench.report import charts

STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;font-size:.9rem}"
         ".regression{color:#b00020;font-weight:600}.improvement{color:#1b7f3a}img{max-width:100%}"
         "figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}")


def _e(value: object) -> str:
    return html.escape(str(value))


def _label(key: SeriesKey) -> str:
    model, metric, machine = key
    return f"{model} · {metric}" + (f" · {machine}" if machine else "")


def trend_png(key: SeriesKey, points: list[SeriesPoint], findings: list[Finding]) -> bytes | None:
    """The series with its intervals; each change a dashed line labelled with its commit; changed files ◆."""
    plt = charts.pyplot()
    if plt is None:
        return None
    figure, axis = plt.subplots(figsize=(8, 2.8))
    xs = list(range(1, len(points) + 1))
    values = [p.value for p in points]
    lows = [p.value - p.low if p.low is not None else 0.0 for p in points]
    highs = [p.high - p.value if p.high is not None else 0.0 for p in points]
    axis.errorbar(xs, values, yerr=[lows, highs], fmt="o-", markersize=3, linewidth=1, capsize=2, color="#4a90d9")
    for finding in findings:
        change, at = finding.change, points[finding.change.start]
        colour = "#d9534f" if finding.regression else "#5cb85c"
        axis.axvline(change.start + 0.5 if change.kind == "step" else change.start + 1, color=colour,
                     linestyle="--", linewidth=1)
        axis.annotate((at.run.commit or at.run.run_id)[:8], (change.start + 1, max(values)), fontsize=7,
                      color=colour, rotation=90, va="top", ha="right")
    for index in content_changes(points):
        axis.plot(index + 1, values[index], marker="D", color="#8a6d00", markersize=6, linestyle="none")
    axis.set_xlabel("run")
    axis.set_title(_label(key), fontsize=10)
    axis.grid(alpha=0.3)
    return charts.png_bytes(figure, plt)


def trend_html(series: dict[SeriesKey, list[SeriesPoint]], findings: list[Finding], followed: list[SeriesKey],
               title: str) -> str:
    by_key: dict[SeriesKey, list[Finding]] = {}
    for finding in findings:
        by_key.setdefault(finding.key, []).append(finding)
    rows = "".join(f"<tr class={'regression' if f.regression else 'improvement'}><td>{_e(_label(f.key))}</td>"
                   f"<td>{_e(f.describe())}</td></tr>" for f in findings)
    figures = []
    for key in followed:
        png = trend_png(key, series[key], by_key.get(key, []))
        picture = f"<img alt='{_e(_label(key))}' src='{charts.data_uri(png)}'>" if png else \
            f"<p>{_e(charts.MISSING_NOTE)}</p>"
        changed = content_changes(series[key])
        note = f"model files changed at run(s) {', '.join(str(i + 1) for i in changed)} (◆)" if changed else ""
        figures.append(f"<figure class=trend data-series='{_e(_label(key))}'>{picture}<figcaption>"
                       f"{len(series[key])} runs{'; ' + _e(note) if note else ''}</figcaption></figure>")
    table = f"<table id=findings><tr><th>series</th><th>change</th></tr>{rows}</table>" if rows else \
        "<p id=findings>no change found in any followed series</p>"
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{_e(title)}</h1><h2>changes</h2>{table}<h2>trends</h2>{''.join(figures)}"
            "</body></html>\n")


def trend_markdown(findings: list[Finding], runs: int, title: str, failing: list[Finding] | None = None) -> str:
    lines = [f"## {title}", "", f"{runs} runs in the history."]
    if failing:
        lines += ["", "### Regressions in the newest runs", "", *[f"- ❌ {f.describe()}" for f in failing]]
    lines += ["", "| series | change |", "|---|---|"]
    lines += [f"| {_label(f.key)} | {'❌' if f.regression else '✅'} {f.describe()} |" for f in findings]
    if not findings:
        lines.append("| — | no change found in any followed series |")
    return "\n".join(lines) + "\n"


def followed_series(series: dict[SeriesKey, list[SeriesPoint]], follows: Any) -> list[SeriesKey]:
    return sorted(key for key in series if follows(key[1]))
