"""Verdicts under load: the README main job, the onnx run with its LoadGen gates and the parallel run, at
several levels of busy-loop processes, plus the slowed copies of cnn.onnx that must never pass.

    python scripts/measure_load_levels.py --log reports/load-levels.jsonl [--levels 0,4,2,6,0,4,0,4]
    python scripts/measure_load_levels.py --log L.jsonl --levels 2,6 --commands slowed-2x-ratio   # a few only
    python scripts/measure_load_levels.py --summary reports/load-levels.jsonl

Each line of the log is one command's outcome (level, load average at start, pytest counts, the checks per
outcome from the JSON report, every failed and inconclusive message, wall seconds). A run that is stopped
resumes: commands already in the log for that position of --levels are not run again. Runs from a snapshot
of the work tree (``git worktree``) so that editing the repository meanwhile changes nothing measured.
Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from measure_speed_verdicts import busy_cores  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--benchmark-disable"]
COMMANDS = {  # name → pytest arguments (the three runs, then the slowed copies)
    "main": ["benchmarks/", "--sketch-models=cnn,mobilenet"],
    "onnx": ["benchmarks/", "--sketch-models=onnx"],
    "parallel": ["benchmarks/", "-n", "2", "--sketch-models=cnn,mobilenet,onnx"],
    "slowed-2x-ratio": ["benchmarks/test_speed.py::test_relative_speed", "--sketch-models=onnx",
                        "--sketch-models-dir={slowed}"],
    "slowed-2x-ab": ["benchmarks/test_baseline.py::test_latency_vs_baseline", "--sketch-models=onnx",
                     "--sketch-models-dir={slowed}", "--sketch-baseline-models={models}"],
    "slowed-1.3x-ab": ["benchmarks/test_baseline.py::test_latency_vs_baseline", "--sketch-models=onnx",
                       "--sketch-models-dir={slowed13}", "--sketch-baseline-models={models}"],
}


def counts(stdout: str) -> dict:
    tail = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}


def run(name: str, level: int, snapshot: Path, paths: dict) -> dict:
    report = Path(tempfile.mkdtemp()) / "r.json"
    args = [a.format(**paths) for a in COMMANDS[name]]
    with busy_cores(level):
        time.sleep(0 if level == 0 else 20)  # let the load average see the busy loops
        load = open("/proc/loadavg").read().split()[0]
        started = time.perf_counter()
        out = subprocess.run([*PYTEST, *args, f"--sketch-json={report}"], cwd=snapshot, capture_output=True, text=True)
    row = {"command": name, "level": level, "load_at_start": float(load), "rc": out.returncode,
           "seconds": round(time.perf_counter() - started, 1), "pytest": counts(out.stdout)}
    if report.exists():
        data = json.loads(report.read_text())
        row["checks"] = data["benchmark_metadata"].get("verdict_counts")
        row["host"] = {k: data["benchmark_metadata"]["host_audit"].get(k) for k in ("load_max", "steal_share", "unfit")}
        row["statuses"] = {m: r["status"] for m, r in data["model_results"].items()}
        row["failed"] = [v["message"] for r in data["model_results"].values() for v in r["threshold_verdicts"]
                         if v.get("status") == "failed"]
        row["inconclusive"] = [v["message"] for r in data["model_results"].values() for v in r["threshold_verdicts"]
                               if v.get("status") == "inconclusive"]
    else:
        row["stdout_tail"] = out.stdout[-2000:] + out.stderr[-1000:]
    return row


def measure(log: Path, levels: list[int], commands: list[str]) -> None:
    done = set()
    if log.exists():
        done = {(r["position"], r["command"]) for r in map(json.loads, log.read_text().splitlines())}
    snapshot = Path(tempfile.mkdtemp()) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(snapshot), "HEAD"], cwd=REPO, check=True)
    models = snapshot / "models"
    paths = {"models": str(models), "slowed": str(snapshot / "slowed"), "slowed13": str(snapshot / "slowed13")}
    maker = [sys.executable, str(snapshot / "scripts/make_slowed_model.py")]
    subprocess.run([*maker, str(models / "cnn.onnx"), paths["slowed"] + "/cnn.onnx"], check=True, capture_output=True)
    subprocess.run([*maker, "--prefix", "4", str(models / "cnn.onnx"), paths["slowed13"] + "/cnn.onnx"], check=True,
                   capture_output=True)
    try:
        for position, level in enumerate(levels):
            for name in commands:
                if (position, name) in done or (name == "slowed-1.3x-ab" and level != 0):
                    continue
                row = {"position": position, **run(name, level, snapshot, paths)}
                with log.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps({k: row.get(k) for k in ("position", "command", "level", "rc", "pytest", "checks",
                                                           "seconds")}), flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(snapshot)], cwd=REPO)


def summary(log: Path) -> None:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    by_level: dict[int, dict] = {}
    for row in rows:
        level = by_level.setdefault(row["level"], {"commands": 0, "failed checks": 0, "inconclusive checks": 0,
                                                   "pytest failed": 0, "nonzero rc": 0})
        if row["command"].startswith("slowed"):
            continue
        level["commands"] += 1
        level["failed checks"] += (row.get("checks") or {}).get("failed", 0)
        level["inconclusive checks"] += (row.get("checks") or {}).get("inconclusive", 0)
        level["pytest failed"] += row["pytest"].get("failed", 0)
        level["nonzero rc"] += row["rc"] != 0
    print(json.dumps(by_level, indent=1))
    for row in rows:
        if row["command"].startswith("slowed"):
            outcome = "failed" if row.get("failed") else "inconclusive" if row.get("inconclusive") else "PASSED"
            print(f"{row['command']} at {row['level']} busy: {outcome} — "
                  f"{(row.get('failed') or row.get('inconclusive') or [''])[0][:200]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path)
    parser.add_argument("--levels", default="0,4,2,6,0,4,0,4")
    parser.add_argument("--commands", default=",".join(COMMANDS), help=f"a comma list of {', '.join(COMMANDS)}")
    parser.add_argument("--summary", type=Path)
    arguments = parser.parse_args()
    if arguments.summary:
        summary(arguments.summary)
    else:
        measure(arguments.log, [int(v) for v in arguments.levels.split(",")], arguments.commands.split(","))
