"""Figures for the model-comparison issue, measured on this machine and printed as Markdown.

    python scripts/measure_comparisons.py [RUNS]     # default 3 runs of the issue's command, then the two checks

1. RUNS runs of ``pytest benchmarks/ --sketch-models=cnn,onnx,onnx-int8,torch --sketch-profile``: per pair the
   McNemar p and the interleaved batch-1 latency ratio (median over runs, with the runs' range); per model the
   end-to-end p50, the share of it outside the runtime, the first call after load, the throughput knee, the
   parity figures, and the top operator of its profile.
2. A copy of ``cnn-int8.onnx`` with its weights perturbed (``scripts/make_perturbed_model.py --noise 0.05``):
   its accuracy gate and its parity gate with cnn, side by side.

Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
MODELS = "cnn,onnx,onnx-int8,torch"


def run(args: list[str], folder: Path) -> tuple[int, dict]:
    report = folder / "r.json"
    out = subprocess.run([*PYTEST, *args, f"--sketch-json={report}"], cwd=REPO, capture_output=True, text=True)
    results = json.loads(report.read_text()) if report.exists() else {}
    return out.returncode, results


def failed_checks(report: dict) -> list[str]:
    return [v["message"] for r in report.get("model_results", {}).values() for v in r["threshold_verdicts"]
            if v["passed"] is False]


def spread(values: list[float], spec: str = ".3g") -> str:
    median = statistics.median(values)
    return f"{median:{spec}}" + (f" ({min(values):{spec}}–{max(values):{spec}})" if len(values) > 1 else "")


def comparisons(runs: int) -> list[str]:
    reports = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            status, report = run(["benchmarks/", f"--sketch-models={MODELS}", "--sketch-profile",
                                  f"--sketch-report-dir={tmp}/dir"], Path(tmp))
            reports.append((status, report))
    lines = [f"Runs: {runs}; exit statuses {[status for status, _ in reports]}.", "",
             *[f"- run {index + 1} failed: {message}" for index, (_, report) in enumerate(reports)
               for message in failed_checks(report)], "",
             "| pair | McNemar p | latency a ÷ b at batch 1 (median of runs, range) | statement (last run) |",
             "|---|---|---|---|"]
    pairs = [r["comparison_analysis"]["pairs"] for _, r in reports]
    for index, pair in enumerate(pairs[-1]):
        ratios = [p[index]["latency"]["ratio"] for p in pairs if p[index].get("latency")]
        lines.append(f"| {pair['a']} ÷ {pair['b']} | {pair['mcnemar_p']:.2g} | {spread(ratios)} | "
                     f"{pair['accuracy_text']}; {pair['latency']['text']} |")
    lines += ["", "| model | end-to-end p50 (ms) | outside the runtime | first call (ms) | runtime p50 (ms) | "
              "knee | parity with cnn | top operator |", "|---|---|---|---|---|---|---|---|"]
    last = reports[-1][1]["model_results"]
    for model in last:
        records = [r["model_results"][model] for _, r in reports]
        e2e = [r["end_to_end"]["median_ms"] for r in records]
        share = [r["end_to_end"]["overhead_share"] * 100 for r in records]
        first = [r["cold_start"]["first_call_ms"] for r in records]
        warm = [r["timing_results"]["1"]["median_ms"] for r in records]
        parity = last[model].get("parity", {}).get("cnn")
        shown = (f"agreement {parity['agreement']:.4f}, max Δp {parity['max_probability_diff']:.2g}"
                 if parity else "—")
        top = (last[model].get("profile") or {}).get("top_operators") or [{}]
        operator = f"{top[0]['operator']} {top[0]['share']:.0%}" if top[0] else "— (no operator profiler)"
        lines.append(f"| {model} | {spread(e2e)} | {spread(share, '.0f')} % | {spread(first)} | {spread(warm)} | "
                     f"{last[model]['batch_sweep']['knee_batch']} | {shown} | {operator} |")
    return lines


def perturbed() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        for name in ("cnn.h5", "cnn.classes.json"):
            shutil.copy(REPO / "models" / name, models / name)
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_perturbed_model.py"),
                        str(REPO / "models" / "cnn-int8.onnx"), str(models / "cnn-int8.onnx"), "--noise", "0.05"],
                       check=True, capture_output=True)
        status, report = run(["benchmarks/test_accuracy.py", "--sketch-models=onnx-int8",
                              f"--sketch-models-dir={models}", "-k", "test_accuracy or parity"], Path(tmp))
    record = report["model_results"]["onnx-int8"]
    verdicts = {v["check"]: v for v in record["threshold_verdicts"]}
    return ["", f"Perturbed int8 copy (exit {status}):", "",
            f"- accuracy gate: {'pass' if verdicts['min_accuracy']['passed'] else 'FAIL'} — "
            f"{verdicts['min_accuracy']['message']}",
            f"- parity gate: {'pass' if verdicts['min_agreement:cnn']['passed'] else 'FAIL'} — "
            f"{verdicts['min_agreement:cnn']['message'][:400]}"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print("\n".join(comparisons(runs) + perturbed()))


if __name__ == "__main__":
    main()
