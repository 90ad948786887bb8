"""Figures for the speed-verdict issue, measured on this machine and printed as JSON.

    python scripts/measure_speed_verdicts.py gates [RUNS] [SPINNERS]   # main job + slowed/unmodified onnx,
                                                                       # idle and with SPINNERS cores kept busy
    python scripts/measure_speed_verdicts.py p99             # onnx p99 at batch 1 with its interval; too-small budget
    python scripts/measure_speed_verdicts.py suite           # the README's test command with one core kept busy

"Loaded" means SPINNERS other processes (default 1) each keep a core busy (`python -c "while True: pass"`)
for the whole run; with as many spinners as cores, the benchmark's own core is time-shared too.
The slowed model is `scripts/make_slowed_model.py`'s copy of `cnn.onnx`: the same outputs for ~2× the
work. Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
MAIN_JOB = ["benchmarks/", "--sketch-models=cnn,mobilenet"]  # the README's command 1


@contextlib.contextmanager
def busy_cores(count: int):
    """``count`` processes spinning, one core each, for as long as the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def run_pytest(args: list[str], report: Path) -> tuple[int, dict, str]:
    out = subprocess.run([*PYTEST, *args, f"--sketch-json={report}"], cwd=REPO, capture_output=True, text=True)
    results = json.loads(report.read_text())["model_results"] if report.exists() else {}
    return out.returncode, results, out.stdout


def failures(stdout: str) -> list[str]:
    return re.findall(r"^FAILED (\S+)", stdout, re.M)


def gates(runs: int, spinners: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        slowed = tmp / "slowed-models"
        subprocess.run([sys.executable, str(REPO / "scripts" / "make_slowed_model.py"), str(REPO / "models/cnn.onnx"),
                        str(slowed / "cnn.onnx")], check=True, capture_output=True)
        rows = []
        for loaded in (False, True):
            for index in range(runs):
                with busy_cores(spinners if loaded else 0):
                    main_rc, main, main_out = run_pytest(MAIN_JOB, tmp / "main.json")
                    slow_rc, slow, slow_out = run_pytest(["benchmarks/test_speed.py", "--sketch-models=onnx",
                                                          f"--sketch-models-dir={slowed}"], tmp / "slow.json")
                    same_rc, same, same_out = run_pytest(["benchmarks/test_speed.py", "--sketch-models=onnx"],
                                                         tmp / "same.json")
                cnn = main.get("cnn", {})
                to_onnx = cnn.get("relative_speed", {}).get("onnx@1", {})
                slow_verdicts = [v for v in slow.get("onnx", {}).get("threshold_verdicts", [])
                                 if v["check"].startswith("max_latency_ratio")]
                rows.append({
                    "load": "loaded" if loaded else "idle", "spinners": spinners if loaded else 0,
                    "run": index + 1,
                    "main_job_failed": failures(main_out), "main_job_exit": main_rc,
                    "cnn_p50_ms_alone": round(cnn.get("timing_results", {}).get("1", {}).get("median_ms", 0), 4),
                    "cnn_to_onnx_ratio": round(to_onnx.get("ratio", 0), 4),
                    "slowed_onnx_exit": slow_rc,
                    "slowed_onnx_message": slow_verdicts[0]["message"] if slow_verdicts else None,
                    "slowed_latency_gate_failed": bool(slow_verdicts) and slow_verdicts[0]["passed"] is False,
                    "unmodified_onnx_exit": same_rc, "unmodified_onnx_failed": failures(same_out),
                })
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"runs": rows, "summary": summarise(rows)}


def summarise(rows: list[dict]) -> dict:
    def median(values):
        values = sorted(values)
        return values[len(values) // 2] if values else None

    idle, busy = ([r for r in rows if r["load"] == load] for load in ("idle", "loaded"))
    ratio_idle, ratio_busy = (median([r["cnn_to_onnx_ratio"] for r in rs]) for rs in (idle, busy))
    abs_idle, abs_busy = (median([r["cnn_p50_ms_alone"] for r in rs]) for rs in (idle, busy))
    return {
        "main_job_runs_with_0_failed": f"{sum(not r['main_job_failed'] for r in rows)}/{len(rows)}",
        "slowed_copy_failed_its_latency_gate": f"{sum(r['slowed_latency_gate_failed'] for r in rows)}/{len(rows)}",
        "unmodified_onnx_never_failed": f"{sum(not r['unmodified_onnx_failed'] for r in rows)}/{len(rows)}",
        "cnn_to_onnx_median_ratio": {"idle": ratio_idle, "loaded": ratio_busy,
                                     "moved_pct": round(100 * (ratio_busy / ratio_idle - 1), 1)},
        "cnn_absolute_p50_ms": {"idle": abs_idle, "loaded": abs_busy,
                                "moved_pct": round(100 * (abs_busy / abs_idle - 1), 1)},
    }


def p99() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "p99.toml"
        config.write_text((REPO / "thresholds.toml").read_text().replace(
            "[onnx.category_accuracy]", "max_p99_latency_ms = 50\n\n[onnx.category_accuracy]"))
        out = {}
        for budget in ("3", "0.01"):
            rc, results, stdout = run_pytest(["benchmarks/test_latency.py", "-k", "single", "--sketch-models=onnx",
                                              f"--sketch-config={config}", f"--sketch-latency-budget={budget}"],
                                             tmp / "p99.json")
            timing = results["onnx"]["timing_results"]["1"]
            verdict = next(v for v in results["onnx"]["threshold_verdicts"] if v["check"] == "max_p99_latency_ms")
            out[f"budget_{budget}_s"] = {"rounds": timing["rounds"], "p99_ms": round(timing["p99_ms"], 4),
                                         "p99_ci_ms": timing["p99_ci_ms"], "verdict": verdict["message"],
                                         "exit": rc}
    return out


def suite() -> dict:
    with busy_cores(1):
        out = subprocess.run([sys.executable, "-m", "pytest", "tests/", "-m", "", "-p", "no:cacheprovider", "-q"],
                             cwd=REPO, capture_output=True, text=True)
    return {"exit": out.returncode, "last_line": out.stdout.strip().splitlines()[-1], "failed": failures(out.stdout)}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "gates"
    if what == "gates":
        runs, spinners = (int(a) for a in (sys.argv[2:4] + ["5", "1"][len(sys.argv[2:4]):]))
        print(json.dumps(gates(runs, spinners), indent=1, ensure_ascii=False))
    elif what == "p99":
        print(json.dumps(p99(), indent=1, ensure_ascii=False))
    elif what == "suite":
        print(json.dumps(suite(), indent=1))
    else:
        raise SystemExit(__doc__)
