"""Figures for the scale-out issue, measured on this machine and printed as Markdown.

    python scripts/measure_scale_out.py [merge] [compare]

1. Three runs of the shipped models as three CI jobs would make them — ``cnn,onnx`` serial, ``mobilenet``
   with ``-n 2``, ``torch`` with ``--sketch-threads=1`` — merged by ``sketchbench merge`` into one report.
2. A baseline run and a second run gated against it (``--sketch-baseline``, recorded samples), then
   ``sketchbench compare`` on their two JSON reports: are its verdicts the gate's?

Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q"]
CLI = [sys.executable, "-m", "pytest_sketchbench.cli"]
RUNS = {"serial": ["--sketch-models=cnn,onnx"], "xdist": ["--sketch-models=mobilenet", "-n", "2"],
        "one-thread": ["--sketch-models=torch", "--sketch-threads=1"]}


def merged(tmp: Path) -> list[str]:
    lines = ["| run | command | exit |", "|---|---|---|"]
    for name, args in RUNS.items():
        out = subprocess.run([*PYTEST, *args, f"--sketch-json={tmp}/{name}.json"], cwd=REPO, capture_output=True,
                             text=True)
        lines.append(f"| {name} | `pytest benchmarks/ {' '.join(args)}` | {out.returncode} |")
    result = subprocess.run([*CLI, "merge", *(f"{tmp}/{name}.json" for name in RUNS), "--json", f"{tmp}/m.json",
                             "--html", f"{tmp}/m.html", "--report-dir", f"{tmp}/merged"], capture_output=True,
                            text=True)
    report = json.loads((tmp / "m.json").read_text())
    lines += ["", f"`sketchbench merge` exit {result.returncode}; rows: {', '.join(report['model_results'])}", "",
              "```", result.stdout.strip(), "```"]
    return lines


def compared(tmp: Path) -> list[str]:
    base = tmp / "base.json.gz"
    for name, extra in (("a", [f"--sketch-save-baseline={base}"]), ("b", [f"--sketch-baseline={base}"])):
        subprocess.run([*PYTEST, "--sketch-models=onnx,onnx-int8", *extra, f"--sketch-json={tmp}/{name}.json"],
                       cwd=REPO, capture_output=True, text=True)
    gate = json.loads((tmp / "b.json").read_text())["comparison_to_baseline"]["rows"]
    result = subprocess.run([*CLI, "compare", f"{tmp}/a.json", f"{tmp}/b.json", "--json", f"{tmp}/rows.json",
                             "--config", str(REPO / "thresholds.toml")], capture_output=True, text=True)
    rows = json.loads((tmp / "rows.json").read_text())["rows"]
    key = lambda row: (row["model"], row["metric"])  # noqa: E731
    by_gate = {key(r): r["verdict"] for r in gate}
    same = [r for r in rows if by_gate.get(key(r)) == r["verdict"]]
    differ = [f"- {r['model']} {r['metric']}: compare says {r['verdict']}, the gate said {by_gate.get(key(r))}"
              for r in rows if r not in same]
    return ["", f"`sketchbench compare a.json b.json` exit {result.returncode}: {len(same)} of {len(rows)} rows give "
                f"the gate's verdict ({len(gate)} rows from --sketch-baseline)", *differ, "", "```",
            result.stdout.strip(), "```"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = sys.argv[1:] or ["merge", "compare"]
        lines = (merged(Path(tmp)) if "merge" in parts else []) + (compared(Path(tmp)) if "compare" in parts else [])
        print("\n".join(lines))


if __name__ == "__main__":
    main()
