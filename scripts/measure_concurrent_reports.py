"""Two pytest runs writing the same report paths at the same time, N rounds: is every file complete, and
does each JSON come from the same run as its HTML (the run id both carry)?

    python scripts/measure_concurrent_reports.py --rounds 50              # a throwaway project in /tmp
    python scripts/measure_concurrent_reports.py --rounds 4 --project DIR # an existing sketch project

Prints one line per inconsistent round and a total; exit status 1 if any round left a truncated,
unparsable or mixed report set.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz"
PROJECT_TEST = """
def test_accuracy(sketch_predictions, sketch_thresholds):
    sketch_thresholds.check_accuracy(sketch_predictions)
"""


def make_project(folder: Path) -> list[str]:
    """A project benchmarking the shipped ONNX model (the lightest runtime) on a small sample."""
    (folder / "test_sketch.py").write_text(PROJECT_TEST)
    return ["--sketch-models=onnx", f"--sketch-models-dir={REPO / 'models'}"]


def check(folder: Path) -> str | None:
    """What is wrong with the report set in ``folder``, if anything."""
    try:
        report = json.loads((folder / "out" / "r.json").read_text())
    except (OSError, ValueError) as exc:
        return f"JSON unreadable ({exc})"
    html = (folder / "out" / "r.html").read_text()
    if not html.rstrip().endswith("</html>"):
        return "HTML truncated"
    match = re.search(r'name="sketchbench-run-id" content="([0-9a-f]+)"', html)
    if not match or match.group(1) != report["benchmark_metadata"]["run_id"]:
        return "JSON and HTML come from different runs"
    leftovers = [p.name for p in (folder / "out").iterdir() if p.name.endswith(".tmp")]
    return f"temporary files left: {leftovers}" if leftovers else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--project", type=Path, help="a sketch project (default: a throwaway one)")
    parser.add_argument("options", nargs="*", help="extra pytest options (e.g. --sketch-models=good)")
    args = parser.parse_args()
    folder = args.project or Path(tempfile.mkdtemp(prefix="sketch-concurrent-"))
    options = args.options or (["--sketch-models=good"] if args.project else make_project(folder))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *options,
               f"--sketch-data={BUNDLED}", "--sketch-samples-per-category=3", "--sketch-json=out/r.json",
               "--sketch-html=out/r.html"]
    bad = 0
    for round_index in range(args.rounds):
        runs = [subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        codes = [run.wait() for run in runs]
        problem = check(folder)
        if problem or any(code not in (0, 1) for code in codes):
            bad += 1
            print(f"round {round_index + 1}: {problem or f'exit codes {codes}'}")
    print(f"{2 * args.rounds} runs, {bad} incomplete or mixed report sets")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
