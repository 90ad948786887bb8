"""HTML pieces of the comparison and diagnostics: pairwise statements, the category × model heatmap,
parity disagreements as drawings, end-to-end stages, the batch sweep and the top operators of a profile."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from pytest_sketchbench.report import charts
from pytest_sketchbench.report.analysis import batch_sweep_text, detail_lines
from pytest_sketchbench.results import CategoryTable, ModelResult, Parity

SHOWN_DISAGREEMENTS = 8


def _e(value: object) -> str:
    return "—" if value is None else html.escape(str(value))


def pairs_table(summary: dict[str, Any]) -> str:
    """One row per pair of models: McNemar's p for accuracy, the latency ratio and how it was measured."""
    rows = []
    for pair in summary.get("pairs", []):
        latency = pair.get("latency") or {}
        p = pair.get("mcnemar_p_holm", pair.get("mcnemar_p"))
        rows.append(f"<tr><td>{_e(pair['a'])}</td><td>{_e(pair['b'])}</td>"
                    f"<td class=num>{'—' if p is None else f'{p:.2g}'}</td><td>{_e(pair.get('accuracy_text'))}</td>"
                    f"<td class=num>{'—' if not latency else format(latency['ratio'], '.3g') + '×'}</td>"
                    f"<td>{_e(latency.get('text'))}</td></tr>")
    if not rows:
        return ""
    return ("<h3>every pair</h3><p class=note>accuracy: McNemar's exact test on the drawings only one model gets "
            "right, p-values Holm-adjusted over the run's pairs; latency at batch 1: a ÷ b, timed interleaved in "
            "this run (its sequential interval) or, where the two were timed apart, a Mann–Whitney U test; "
            "significance level 0.05</p><table id='pairs'><tr><th>a</th>"
            "<th>b</th><th>McNemar p (Holm)</th><th>accuracy</th><th>latency a ÷ b</th><th>latency</th></tr>"
            + "".join(rows) + "</table>")


def machines_table(rows: list[dict[str, Any]]) -> str:
    """Merged runs: each model's batch-1 p50 on each machine, and in calibration calls (× the speed index)."""
    if not rows:
        return ""
    body = "".join(f"<tr><td>{_e(r['model'])}</td><td>{_e(r['machine'])}</td><td class=num>{r['p50_ms']:.3f}</td>"
                   f"<td class=num>{'—' if not r['speed_index'] else format(r['speed_index'], ',.0f')}</td>"
                   f"<td class=num>{'—' if not r['calibration_calls'] else format(r['calibration_calls'], '.1f')}</td>"
                   "</tr>" for r in rows)
    return ("<h3>speed by machine</h3><p class=note>p50 in calibration calls = p50 × the machine's speed index: "
            "how many calls of the calibration workload fit in one call of the model on that machine — the figure "
            "to compare across machines</p><table id='speed-by-machine'><tr><th>model</th><th>machine</th>"
            "<th>p50 @1 (ms)</th><th>speed index (calls/s)</th><th>p50 in calibration calls</th></tr>"
            f"{body}</table>")


def _heat(value: float | None) -> str:
    if value is None:
        return "<td class=num>—</td>"
    hue = int(np.clip(value, 0, 1) * 120)  # red (0) → green (1)
    return f"<td class=num style='background:hsl({hue},70%,85%)'>{value:.3f}</td>"


def category_heatmap(table: CategoryTable) -> str:
    """Accuracy of each category (rows) for each model (columns), coloured red → green."""
    if len(table.models) < 2:
        return ""
    head = "".join(f"<th>{_e(m)}</th>" for m in table.models)
    rows = "".join(f"<tr><td>{_e(c)}</td>{''.join(_heat(a) for a in row)}</tr>"
                   for c, row in zip(table.categories, table.accuracy, strict=True))
    return (f"<h3>accuracy per category and model</h3><table id='category-by-model'><tr><th>category</th>{head}"
            f"</tr>{rows}</table><p class=note>also as category_by_model.csv in --sketch-report-dir</p>")


def model_details(record: ModelResult, images: np.ndarray | None) -> str:
    """The model's detail lines, its parity disagreements (as drawings), stages, batch sweep and profile."""
    parts = [f"<p class=note>{_e(line)}</p>" for line in detail_lines(record) if not line.startswith("categories")]
    if record.model_sha256:
        parts.append(f"<p class=note>model files sha256 <code>{_e(record.model_sha256)}</code></p>")
    for other, result in record.parity.items():
        parts.append(_disagreements(record.model, other, result, images))
    sweep = batch_sweep_text(record)
    if sweep:
        parts.append(f"<p class=note>{_e(sweep)}</p>")
    profile = record.profile or {}
    if profile.get("top_operators"):
        rows = "".join(f"<tr><td>{_e(op['operator'])}</td><td class=num>{op['calls']:,}</td>"
                       f"<td class=num>{op['total_ms']:.2f}</td><td class=num>{op['share']:.1%}</td></tr>"
                       for op in profile["top_operators"])
        parts.append(f"<h3>top 10 operators ({_e(profile.get('runtime_profiler'))}, {profile['calls']} calls)</h3>"
                     f"<table class='top-operators'><tr><th>operator</th><th>calls</th><th>self time (ms)</th>"
                     f"<th>share</th></tr>{rows}</table>")
    for note in profile.get("notes", []):
        parts.append(f"<p class=note>{_e(note)}</p>")
    return "".join(parts)


def _disagreements(model: str, other: str, result: Parity, images: np.ndarray | None) -> str:
    shown = result.disagreeing[:SHOWN_DISAGREEMENTS]
    if not shown:
        return ""
    cells = []
    for row in shown:
        picture = ""
        if images is not None and 0 <= row.index < len(images):
            uri = charts.data_uri(charts.drawing_png(images[row.index]))
            picture = f"<img alt='drawing {row.index}' src='{uri}'><br>"
        cells.append(f"<figure class=drawing>{picture}<figcaption>#{row.index} {_e(row.label)}<br>"
                     f"{_e(model)}: {_e(row.predicted)}<br>{_e(other)}: {_e(row.with_predicted)}</figcaption>"
                     "</figure>")
    return (f"<h3>where {_e(model)} and {_e(other)} disagree ({result.disagreements:,} drawings; the first "
            f"{len(shown)})</h3><div class='grid disagreements'>{''.join(cells)}</div>")
