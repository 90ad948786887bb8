"""The knee of ``served-cnn`` (the real MLServer) and of the local ``onnx`` model: a geometric ramp of LoadGen
Server runs through ``pytest benchmarks/test_loadgen.py -k Steps``, each step's figures and the knee printed.

    python scripts/measure_knee.py --json scripts/logs/knee.json        # about 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from serve_model import start_in_background  # noqa: E402

RAMP = """ramp_qps = {{ from = {low}, to = {high}, steps = {steps} }}
step_duration_ms = {step_ms}
server_max_p99_ms = 1000
accuracy = false
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-qps", type=float, default=50)
    parser.add_argument("--to-qps", type=float, default=1600)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--step-ms", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ramp = RAMP.format(low=args.from_qps, high=args.to_qps, steps=args.steps, step_ms=args.step_ms)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, url = start_in_background("mlserver", folder / "server.log")
        try:
            (folder / "t.toml").write_text(
                f'[sketchbench]\nthreads = 1\n[models.served-cnn]\nruntime = "v2"\nurl = "{url}"\nmodel_name = "cnn"\n'
                f'categories = "{REPO / "models" / "cnn.classes.json"}"\nconcurrency = 2\n'
                f"[served-cnn.loadgen]\n{ramp}[onnx.loadgen]\n{ramp}")
            done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_loadgen.py", "-k", "Steps",
                                   "--sketch-models=onnx,served-cnn", f"--sketch-config={folder / 't.toml'}",
                                   f"--sketch-json={folder / 'r.json'}", "-p", "no:cacheprovider"],
                                  cwd=REPO, capture_output=True, text=True, timeout=1200)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        print(done.stdout[done.stdout.find("sketchbench summary"):])
        results = json.loads((folder / "r.json").read_text())["model_results"]
    shapes = {name: results[name]["loadgen"]["Steps"]["steps"] for name in ("onnx", "served-cnn")}
    if args.json:
        args.json.write_text(json.dumps({"ramp": vars(args) | {"json": str(args.json)}, "shapes": shapes},
                                        indent=1) + "\n")
    for name, shape in shapes.items():
        print(f"{name}: knee {shape['knee_qps']} QPS ({shape['why']})")


if __name__ == "__main__":
    main()
