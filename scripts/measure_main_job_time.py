"""How long the README main job takes at two commits, run alternately on the same machine in the same hour.

    python scripts/measure_main_job_time.py BASE_COMMIT [--runs 3]

Each commit is checked out into its own worktree; the runs alternate (base, head, base, …) so that a drift of
the machine hits both. Prints each run's wall seconds and the ratio of the medians (head ÷ base).
Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAIN_JOB = [sys.executable, "-m", "pytest", "benchmarks/", "--sketch-models=cnn,mobilenet", "-q", "-p",
            "no:cacheprovider"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trees = {}
    root = Path(tempfile.mkdtemp())
    for label, commit in (("base", args.base), ("head", "HEAD")):
        trees[label] = root / label
        subprocess.run(["git", "worktree", "add", "--detach", str(trees[label]), commit], cwd=REPO, check=True,
                       capture_output=True)
    seconds: dict[str, list[float]] = {"base": [], "head": []}
    try:
        for run in range(args.runs):
            for label in ("base", "head") if run % 2 == 0 else ("head", "base"):
                started = time.perf_counter()
                out = subprocess.run(MAIN_JOB, cwd=trees[label], capture_output=True, text=True)
                seconds[label].append(round(time.perf_counter() - started, 1))
                print(json.dumps({"run": run, "commit": label, "rc": out.returncode, "seconds": seconds[label][-1],
                                  "load": open("/proc/loadavg").read().split()[0],
                                  "tail": out.stdout.strip().splitlines()[-1]}), flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
    base, head = statistics.median(seconds["base"]), statistics.median(seconds["head"])
    print(json.dumps({"base_median_s": base, "head_median_s": head, "head_over_base": round(head / base, 3)}))


if __name__ == "__main__":
    main()
