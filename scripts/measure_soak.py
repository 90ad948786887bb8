"""A soak of ``served-cnn`` (the real MLServer) and of a leaking stand-in in front of it (``fault_proxy.py
--leak``: it keeps every request and answer), through ``pytest benchmarks/test_loadgen.py -k Soak``.

    python scripts/measure_soak.py --json scripts/logs/soak.json                 # 10 + 2 minutes
    python scripts/measure_soak.py --soak-s 60 --leak-soak-s 30                  # a quick look

Expected: MLServer holds (p99 drift and server RSS growth within their limits, its window table printed);
the leaking stand-in fails ``max_memory_growth_mb``.
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

CONFIG = """[sketchbench]
threads = 1
[models.{name}]
runtime = "v2"
url = "{url}"
model_name = "cnn"
categories = "{categories}"
concurrency = 2
stage_timeout_s = {stage}
[{name}.loadgen]
server_target_qps = {qps}
server_max_p99_ms = 200
soak_s = {soak_s}
soak_windows = 10
max_p99_drift = 0.5
max_memory_growth_mb = {growth}
accuracy = false
"""


def soak(name: str, url: str, folder: Path, qps: float, soak_s: float, growth_mb: float) -> dict:
    config = folder / f"{name}.toml"
    config.write_text(CONFIG.format(name=name, url=url, categories=REPO / "models" / "cnn.classes.json", qps=qps,
                                    soak_s=soak_s, growth=growth_mb, stage=soak_s + 300))
    report = folder / f"{name}.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_loadgen.py", f"--sketch-models={name}",
                           "-k", "Soak", f"--sketch-config={config}", f"--sketch-json={report}",
                           "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True,
                          timeout=soak_s + 900)
    print(done.stdout[done.stdout.find("sketchbench summary"):], flush=True)
    record = json.loads(report.read_text())["model_results"][name]
    verdicts = {v["check"]: {"status": v["status"], "message": v["message"]} for v in record["threshold_verdicts"]}
    return {"soak": record["loadgen"]["Soak"]["soak"], "verdicts": verdicts, "pytest_exit": done.returncode,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak-s", type=float, default=600)
    parser.add_argument("--leak-soak-s", type=float, default=120)
    parser.add_argument("--qps", type=float, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, url = start_in_background("mlserver", folder / "server.log")
        try:
            runs = {"served-cnn": soak("served-cnn", url, folder, args.qps, args.soak_s, 50)}
            with FaultProxy(url, leak=True) as leaking:
                runs["served-leaking"] = soak("served-leaking", leaking.url, folder, args.qps, args.leak_soak_s, 5)
                kept_mb = sum(len(item) for item in leaking.kept) / 1e6
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    expected = {("served-cnn", "soak_memory_growth"): "passed", ("served-cnn", "soak_p99_drift"): "passed",
                ("served-leaking", "soak_memory_growth"): "failed"}
    ok = True
    for (name, check), status in expected.items():
        got = runs[name]["verdicts"].get(check, {}).get("status")
        ok &= got == status
        print(f"{name:15} {check:20} {got} (expected {status}): {runs[name]['verdicts'].get(check, {}).get('message')}")
    print(f"the leaking stand-in kept {kept_mb:.1f} MB of requests and answers")
    if args.json:
        args.json.write_text(json.dumps({"qps": args.qps, "runs": runs, "leak_kept_mb": kept_mb,
                                         "as_expected": ok}, indent=1, ensure_ascii=False) + "\n")
    print("all as expected" if ok else "NOT as expected")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
