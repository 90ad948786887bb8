"""Profiling on demand (``--sketch-profile``): where a model's time goes, when a speed gate fails.

Per model, into ``--sketch-report-dir/<model>/``: the runtime's own operator-level profile as a Chrome
trace (``trace.json``, ``{"traceEvents": [...]}``: ONNX Runtime's profiler, ``torch.profiler``), a
Python-level profile of the harness around the same calls (pyinstrument) drawn as a flame graph
(``flamegraph.svg``) and as pyinstrument's own page (``pyinstrument.html``), and the top operators by
self time. Profilers slow what they watch: a profile is taken after the model's timings, in a runtime
session of its own where the runtime needs one, and no gate ever reads it.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from pytest_sketchbench.files import write_file
from pytest_sketchbench.measure import quiet_process, time_end_to_end
from pytest_sketchbench.models.base import ModelPlugin

PROFILE_CALLS = 50


def rank_operators(totals: dict[str, tuple[int, float]], n: int = 10) -> list[dict]:
    """``{operator: (calls, seconds)}`` → the ``n`` largest by time, each with its share of all operator time."""
    whole = sum(seconds for _, seconds in totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1][1])[:n]
    return [{"operator": name, "calls": calls, "total_ms": seconds * 1000, "share": seconds / whole}
            for name, (calls, seconds) in ranked]


def merged_tree(frame) -> dict:
    """A profiler's frame tree with same-named callees of each caller merged (a flame graph sums them)."""
    node = {"label": f"{frame.function} ({frame.file_path_short}:{frame.line_no})", "function": frame.function,
            "time": float(frame.time), "children": {}}
    for child in frame.children:
        merged = merged_tree(child)
        key = (child.function, child.file_path_short)
        if key in node["children"]:
            _add(node["children"][key], merged)
        else:
            node["children"][key] = merged
    return node


def _add(into: dict, other: dict) -> None:
    into["time"] += other["time"]
    for key, child in other["children"].items():
        if key in into["children"]:
            _add(into["children"][key], child)
        else:
            into["children"][key] = child


def flamegraph_svg(root, title: str, width: int = 1200, row: int = 17, min_share: float = 0.002) -> str:
    """A flame graph (callers below, callees above, width = time) of a pyinstrument frame tree, as a
    self-contained SVG: opens in any browser, each box's tooltip names the function, file and time."""
    tree = merged_tree(root)
    total = max(tree["time"], 1e-12)
    boxes: list[tuple[int, float, dict]] = []

    def walk(node: dict, depth: int, x: float) -> None:
        boxes.append((depth, x, node))
        for child in sorted(node["children"].values(), key=lambda c: -c["time"]):
            if child["time"] / total >= min_share:
                walk(child, depth + 1, x)
            x += child["time"]

    walk(tree, 0, 0.0)
    height = (max(depth for depth, *_ in boxes) + 2) * row + 20
    scale = width / total
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="monospace" font-size="11"><text x="4" y="14">{html.escape(title)} '
             f'({total * 1000:.1f} ms sampled)</text>']
    for depth, x, node in boxes:
        y = height - (depth + 1) * row
        w, seconds, label = node["time"] * scale, node["time"], node["label"]
        hue = 20 + (sum(map(ord, node["function"])) % 40)  # stable across runs, unlike hash()
        tip = f"{label} — {seconds * 1000:.2f} ms, {seconds / total:.1%}"
        parts.append(f'<g><title>{html.escape(tip)}</title><rect x="{x * scale:.1f}" y="{y}" width="{max(w, 0.5):.1f}" '
                     f'height="{row - 1}" fill="hsl({hue},85%,60%)"/>')
        if w > 40:
            chars = int(w / 7)
            text = label if len(label) <= chars else label[:max(chars - 1, 1)] + "…"
            parts.append(f'<text x="{x * scale + 3:.1f}" y="{y + row - 5}">{html.escape(text)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def profile_model(plugin: ModelPlugin, images: np.ndarray, folder: Path, trackers=(),
                  calls: int = PROFILE_CALLS) -> dict:
    """Profile ``calls`` runs of one prepared batch: the runtime's operators, then the harness in Python."""
    folder.mkdir(parents=True, exist_ok=True)
    result: dict = {"calls": calls, "batch_size": len(images), "notes": []}
    with quiet_process(trackers):
        trace = folder / "trace.json"
        operators = plugin.profile_operators(plugin.prepare(images), calls, trace)
        if operators is None:
            result["notes"].append(f"{plugin.runtime} has no operator profiler here that writes a Chrome trace: "
                                   "only the Python-level profile was taken")
        else:
            result.update(trace=str(trace), runtime_profiler=plugin.profiler_name,
                          top_operators=rank_operators(operators))
        try:
            from pyinstrument import Profiler
        except ImportError:
            result["notes"].append("pyinstrument is not installed: no flame graph "
                                   "(pip install 'pytest-sketchbench[profile]')")
            return result
        profiler = Profiler(interval=0.0005)
        with profiler:
            time_end_to_end(plugin, images, calls)
    root = profiler.last_session.root_frame()
    if root is not None:
        flame = folder / "flamegraph.svg"
        write_file(flame, flamegraph_svg(root, f"{plugin.name}: {calls} calls end to end, batch "
                                                          f"{len(images)}"))
        page = folder / "pyinstrument.html"
        write_file(page, profiler.output_html())
        result.update(flamegraph=str(flame), python_profile=str(page))
    return result
