"""``cnn.onnx`` served by two real Open Inference Protocol servers, MLServer and KServe's Python model server,
measured side by side by the same plugin code (``runtime = "v2"``) and compared with the local ``onnx`` model:
answers (agreement, max |Δp|), the client / server / network split of a request, and LoadGen's figures.

    python scripts/measure_two_servers.py --json scripts/logs/two_servers.json    # about 4 minutes

The first call makes each server's virtual environment (``scripts/serve_model.py --server …``).
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
from serve_model import start_in_background  # noqa: E402

SERVERS = ("mlserver", "kserve")
SERVED = """[models.served-{server}]
runtime = "v2"
url = "{url}"
model_name = "cnn"
categories = "{categories}"
concurrency = 2
[served-{server}]
min_accuracy = 0.885
min_agreement = {{ with = "onnx", min = 1.0 }}
max_probability_diff = {{ with = "onnx", max = 1e-5 }}
[served-{server}.loadgen]
server_target_qps = 100
server_max_p99_ms = 200
min_offline_qps = 50
min_duration_ms = 2000
min_query_count = 1000
"""


def summary(record: dict) -> dict:
    parity = (record.get("parity") or {}).get("onnx") or {}
    split = ((record.get("served_results") or {}).get("by_batch") or {}).get("1") or {}
    runs = record.get("loadgen") or {}
    return {"status": record["status"], "accuracy": (record.get("accuracy_results") or {}).get("accuracy"),
            "agreement_with_onnx": parity.get("agreement"), "max_probability_diff": parity.get("max_probability_diff"),
            "client_p50_ms": split.get("client_p50_ms"), "server_p50_ms": split.get("server_p50_ms"),
            "network_p50_ms": split.get("network_p50_ms"),
            "server_p99_ms": (runs.get("Server") or {}).get("p99_ms"), "server_valid": (runs.get("Server") or {})
            .get("valid"), "offline_qps": (runs.get("Offline") or {}).get("qps"),
            "loadgen_accuracy_differs": (runs.get("Accuracy") or {}).get("differs_from_accuracy_pass"),
            "platform": (record.get("model_info") or {}).get("platform")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, processes = Path(tmp), []
        try:
            urls = {}
            for server in SERVERS:
                process, urls[server] = start_in_background(server, folder / f"{server}.log")
                processes.append(process)
            categories = REPO / "models" / "cnn.classes.json"
            config = "[sketchbench]\nthreads = 1\n" + "".join(
                SERVED.format(server=s, url=u, categories=categories) for s, u in urls.items())
            (folder / "t.toml").write_text(config)
            models = ",".join(["onnx", *(f"served-{s}" for s in SERVERS)])
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_accuracy.py",
                                   "benchmarks/test_loadgen.py",
                                   "benchmarks/test_latency.py::test_single_drawing_latency",
                                   f"--sketch-models={models}", f"--sketch-config={folder / 't.toml'}",
                                   f"--sketch-json={folder / 'r.json'}", "-p", "no:cacheprovider", "-q"],
                                  cwd=REPO, capture_output=True, text=True, timeout=1500)
            elapsed = time.monotonic() - started
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        results = json.loads((folder / "r.json").read_text())["model_results"]
    rows = {s: summary(results[f"served-{s}"]) for s in SERVERS}
    for server, row in rows.items():
        print(f"served-{server}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in row.items()))
    print(f"pytest exit {done.returncode} in {elapsed:.0f} s; last line: {done.stdout.strip().splitlines()[-1]}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "pytest_exit": done.returncode}, indent=1) + "\n")
    ok = done.returncode == 0 and all(r["agreement_with_onnx"] == 1.0 for r in rows.values())
    print("both servers as expected" if ok else "NOT as expected")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
