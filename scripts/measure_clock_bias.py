"""Which clock stays unbiased under contention: a model's latency ratio to the calibration network, timed
interleaved on the wall clock and on the process's CPU clock, idle and with busy-loop processes beside it.

    python scripts/measure_clock_bias.py [--busy 0,4] [--models onnx,cnn] [--repeats 3]

The process is pinned to one core with one intra-op thread per runtime (the shipped setting), like a
benchmark run. Prints one JSON row per (busy, model, repeat) and a median per (busy, model, clock).
Not part of the test suite: measurements, not pass/fail unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from measure_speed_verdicts import busy_cores  # noqa: E402

from pytest_sketchbench.measure import time_interleaved, timed_call  # noqa: E402
from pytest_sketchbench.models.keras_model import KerasModel  # noqa: E402
from pytest_sketchbench.models.onnx_model import OnnxModel  # noqa: E402
from pytest_sketchbench.side_by_side import CALIBRATION_FILE  # noqa: E402

FILES = {"onnx": (OnnxModel, REPO / "models/cnn.onnx"), "cnn": (KerasModel, REPO / "models/cnn.h5")}


def loaded(kind: str):
    plugin_class, path = FILES[kind] if kind in FILES else (OnnxModel, CALIBRATION_FILE)
    plugin = plugin_class(kind, {"path": str(path), "threads": 1, "device": "cpu"})
    plugin.import_runtime()
    plugin.load()
    return plugin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--busy", default="0,4")
    parser.add_argument("--models", default="onnx,cnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    batch = np.load(REPO / "pytest_sketchbench/bundled/quickdraw_test.npz")["images"][:1]
    calibration = loaded("calibration")
    call_b = timed_call(calibration, calibration.prepare(batch))
    summary: dict[str, list[float]] = {}
    for busy in (int(b) for b in args.busy.split(",")):
        with busy_cores(busy):
            for kind in args.models.split(","):
                model = loaded(kind)
                call_a = timed_call(model, model.prepare(batch))
                for repeat in range(args.repeats):
                    samples = time_interleaved(call_a, call_b, args.rounds, warmup=20, block=4)
                    row = {"busy": busy, "model": kind, "repeat": repeat, "load": os.getloadavg()[0]}
                    for clock in ("wall", "cpu"):
                        a, b = samples.clock(clock)
                        row[clock] = float(np.median(a) / np.median(b))
                        row[f"{clock}_p10"] = float(np.percentile(a, 10) / np.percentile(b, 10))
                        summary.setdefault(f"busy={busy} {kind} {clock}", []).append(row[clock])
                    print(json.dumps(row), flush=True)
    print(json.dumps({key: round(statistics.median(v), 2) for key, v in summary.items()}, indent=1))


if __name__ == "__main__":
    main()
