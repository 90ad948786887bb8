"""MLPerf's compliance checks, measured as a user runs them: ``answers_under_load`` (TEST01) and ``no_caching``
(TEST04) on the local ``onnx`` model, on ``cnn.onnx`` served by the real MLServer, and on two stand-ins in front
of that server (``fault_proxy.py``): one answering repeats from a cache, one giving a wrong class for 1 % of the
single-drawing requests that load sends (its at-rest accuracy pass, in batches, is untouched).

    python scripts/measure_compliance.py --json scripts/logs/compliance.json     # about 4 minutes

Expected: onnx and served pass both checks; the cache fails no_caching; the wrong-under-load server fails
answers_under_load and passes min_accuracy at rest.
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

LOADGEN = """server_target_qps = {qps}
server_max_p99_ms = 1000
min_query_count = {queries}
min_duration_ms = 5000
accuracy = false
answers_under_load = true
no_caching = true
"""
SERVED = """[models.{name}]
runtime = "v2"
url = "{url}"
model_name = "cnn"
categories = "{categories}"
concurrency = 4
"""
EXPECTED = {"onnx": {"loadgen_answers_under_load": "passed", "loadgen_no_caching": "passed"},
            "served": {"loadgen_answers_under_load": "passed", "loadgen_no_caching": "passed"},
            "served-cache": {"loadgen_no_caching": "failed"},
            "served-wrong": {"loadgen_answers_under_load": "failed", "min_accuracy": "passed"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qps", type=float, default=100)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = LOADGEN.format(qps=args.qps, queries=args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, url = start_in_background("mlserver", folder / "server.log")
        try:
            with FaultProxy(url, cache=True) as cache, FaultProxy(url, wrong=0.01, seed=7) as wrong:
                urls = {"served": url, "served-cache": cache.url, "served-wrong": wrong.url}
                config = "[sketchbench]\nthreads = 1\n" + "".join(
                    SERVED.format(name=name, url=u, categories=REPO / "models" / "cnn.classes.json")
                    for name, u in urls.items())
                config += "".join(f"[{name}]\nmin_accuracy = 0.885\n[{name}.loadgen]\n{table}"
                                  for name in ("onnx", *urls))
                (folder / "t.toml").write_text(config)
                started = time.monotonic()
                done = subprocess.run(
                    [sys.executable, "-m", "pytest", "benchmarks/test_loadgen.py", "benchmarks/test_accuracy.py",
                     f"--sketch-models=onnx,{','.join(urls)}", "-k", "(Server and not Peak) or test_accuracy[",
                     f"--sketch-config={folder / 't.toml'}", f"--sketch-json={folder / 'r.json'}",
                     "-p", "no:cacheprovider", "-q"], cwd=REPO, capture_output=True, text=True, timeout=1200)
                elapsed = time.monotonic() - started
                stand_ins = {"cached_answers": len(cache.answers), "wrong_answers": wrong.wrong_answers}
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        results = json.loads((folder / "r.json").read_text())["model_results"]
    rows, ok = {}, True
    for name, expected in EXPECTED.items():
        verdicts = {v["check"]: v for v in results[name]["threshold_verdicts"]}
        rows[name] = {check: {"status": v["status"], "message": v["message"]} for check, v in verdicts.items()
                      if check in ("loadgen_answers_under_load", "loadgen_no_caching", "min_accuracy")}
        for check, status in expected.items():
            got = verdicts.get(check, {}).get("status")
            ok &= got == status
            print(f"{name:13} {check:28} {got} (expected {status}): {verdicts.get(check, {}).get('message', '')}")
    print(f"stand-ins: {stand_ins}; pytest exit {done.returncode} in {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"qps": args.qps, "queries": args.queries, "stand_ins": stand_ins,
                                         "verdicts": rows, "as_expected": ok}, indent=1, ensure_ascii=False) + "\n")
    print("all as expected" if ok else "NOT as expected")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
