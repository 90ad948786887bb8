"""Failed requests under load, measured: the real MLServer serving cnn.onnx, ``fault_proxy.py`` in front of it
failing 1 %, 5 % and 30 % of inference requests (503s, resets and delays past the client's timeout, in turn),
and a LoadGen Server run through ``pytest benchmarks/test_loadgen.py`` at each share.

    python scripts/measure_error_rates.py                 # about 2 minutes; prints a table
    python scripts/measure_error_rates.py --json scripts/logs/error_rates.json

Each run must complete; the injected share must lie within the measured rate's 95 % interval; and
``max_error_rate = 0.02`` must pass at 1 % and fail at 5 % and 30 %.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from fault_proxy import FaultProxy  # noqa: E402
from serve_model import start_in_background  # noqa: E402

LIMIT = 0.02
CONFIG = """
[sketchbench]
threads = 1
[models.served]
runtime = "v2"
url = "{url}"
model_name = "cnn"
categories = "{categories}"
concurrency = 8
timeout_s = 0.5
[served.loadgen]
server_target_qps = {qps}
server_max_p99_ms = 1000
min_query_count = {queries}
min_duration_ms = 5000
accuracy = false
max_error_rate = {limit}
"""


def run_at(share: float, upstream: str, folder: Path, qps: float, queries: int) -> dict:
    with FaultProxy(upstream, fail=share, how="mix", delay_s=1.0, seed=int(share * 1000)) as proxy:
        config = folder / f"fail-{share:g}.toml"
        config.write_text(CONFIG.format(url=proxy.url, categories=REPO / "models" / "cnn.classes.json", qps=qps,
                                        queries=queries, limit=LIMIT))
        report = folder / f"fail-{share:g}.json"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_loadgen.py", "--sketch-models=served",
                               "-k", "Server and not Peak", f"--sketch-config={config}", f"--sketch-json={report}",
                               "-p", "no:cacheprovider", "-q"], cwd=REPO, capture_output=True, text=True, timeout=600)
        elapsed = time.monotonic() - started
    record = json.loads(report.read_text())["model_results"]["served"]
    run = record["loadgen"]["Server"]
    verdict = next(v for v in record["threshold_verdicts"] if v["check"] == "max_error_rate")
    failures = run["failures"]
    from collections import Counter

    from pytest_sketchbench.load_errors import FailureCount

    low, high = FailureCount(failures["requests"], Counter(failures["by_kind"])).interval()
    return {"injected_share": share, "injected": dict(proxy.injected), "requests": failures["requests"],
            "failed": failures["failed"], "by_kind": failures["by_kind"], "rate": failures["failed"] /
            failures["requests"], "ci": [low, high], "share_within_ci": low <= share <= high,
            "verdict": verdict["status"], "expected": "passed" if share < LIMIT else "failed",
            "message": verdict["message"], "answered_p99_ms": run["answered_p99_ms"], "loadgen_p99_ms": run["p99_ms"],
            "pytest_exit": done.returncode, "seconds": round(elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", default="0.01,0.05,0.3")
    parser.add_argument("--qps", type=float, default=100)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_in_background("mlserver", Path(tmp) / "server.log")
        try:
            for share in (float(s) for s in args.shares.split(",")):
                rows.append(run_at(share, url, Path(tmp), args.qps, args.queries))
                row = rows[-1]
                print(f"injected {share:>5.0%}: {row['failed']:>4} of {row['requests']:,} failed "
                      f"({row['rate']:.2%}, CI {row['ci'][0]:.2%}–{row['ci'][1]:.2%}; share inside: "
                      f"{row['share_within_ci']}) {row['by_kind']}; max_error_rate {LIMIT:g}: {row['verdict']} "
                      f"(expected {row['expected']}); p99 answered {row['answered_p99_ms']:.1f} ms, LoadGen's "
                      f"{row['loadgen_p99_ms']:.1f} ms; {row['seconds']} s", flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    if args.json:
        args.json.write_text(json.dumps({"qps": args.qps, "queries": args.queries, "limit": LIMIT, "runs": rows},
                                        indent=1) + "\n")
    ok = all(r["share_within_ci"] and r["verdict"] == r["expected"] for r in rows)
    print("all as expected" if ok else "NOT as expected")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
