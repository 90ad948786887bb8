"""Figures for the first-run issue, measured on this machine and printed as JSON.

    python scripts/measure_first_run.py import      # `pytest --version` with vs without the plugin (median of 5)
    python scripts/measure_first_run.py isolation [THREADS]   # p50 per model in an `all` run vs a bare loop
                                                              # in a fresh process (THREADS: 1 = shipped, 0 = defaults)

Not part of the test suite: these are measurements, not pass/fail unit tests. Run it in the venv the
README's main command makes (`.[all]`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# One drawing through the runtime's own API, nothing of the plugin in the timed call: the reference a
# user would write by hand. Each runs in a fresh process with only that model loaded.
BARE_LOOP = r'''
import json, sys, time
import numpy as np
kind, path, rounds, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[6])
if threads:  # the same settings as the plugin run: N intra-op threads, the process pinned to N cores
    import os
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
images = np.load(sys.argv[4])["images"][:1]
x = (images.astype(np.float32) / 255.0)[..., None]
if kind == "onnx":
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    call = lambda: session.run(None, {name: x})
elif kind == "torch":
    import torch
    if threads:
        torch.set_num_threads(threads)
    module = torch.jit.load(path).eval()
    tensor = torch.from_numpy(x)
    def call():
        with torch.inference_mode():
            module(tensor)
elif kind == "keras":
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras, tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras.models.load_model(path, compile=False)
    fn = tf.function(lambda t: model(t, training=False))
    tensor = tf.constant(x)
    call = lambda: fn(tensor).numpy()
elif kind == "tfjs":  # no runtime API of its own: TensorFlow running the GraphDef, as the plugin loads it
    sys.path.insert(0, sys.argv[5])
    from pytest_sketchbench.models.tfjs_model import TfjsGraphModel
    model = TfjsGraphModel("bare", {"path": path, **({"threads": threads} if threads else {})})
    model.load()
    prepared = model.prepare(images)
    fn = model._call
    call = lambda: fn(prepared).numpy()
for _ in range(max(20, rounds // 10)):
    call()
samples = []
for _ in range(rounds):
    start = time.perf_counter(); call(); samples.append(time.perf_counter() - start)
print(json.dumps({"p50_ms": float(np.median(samples) * 1000), "rounds": rounds}))
'''

MODELS = {  # plugin name → (bare-loop kind, file)
    "cnn": ("keras", "models/cnn.h5"),
    "mobilenet": ("tfjs", "models/mobilenet/model.json"),
    "onnx": ("onnx", "models/cnn.onnx"),
    "onnx-int8": ("onnx", "models/cnn-int8.onnx"),
    "torch": ("torch", "models/cnn.pt"),
}


def import_overhead(repeats: int = 5) -> dict:
    """Wall time of `pytest --version` with the plugin auto-loaded and with it blocked (-p no:sketchbench)."""
    def timed(*args: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", *args, "--version"], capture_output=True, check=True,
                       cwd=tempfile.gettempdir())
        return time.perf_counter() - started

    with_plugin, without = [], []
    for _ in range(repeats):  # alternate, so drift hits both alike
        with_plugin.append(timed())
        without.append(timed("-p", "no:sketchbench"))
    overhead = statistics.median(with_plugin) - statistics.median(without)
    return {"with_plugin_s": statistics.median(with_plugin), "without_plugin_s": statistics.median(without),
            "overhead_s": round(overhead, 4), "bar": "<= 0.1", "met": overhead <= 0.1, "repeats": repeats}


def bare_p50(model: str, threads: int, rounds: int = 2000, repeats: int = 3) -> float:
    """Median over ``repeats`` fresh processes (batch-1 latency of TF and torch shifts between processes)."""
    kind, relative = MODELS[model]
    data = REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz"
    p50s = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", BARE_LOOP, kind, str(REPO / relative), str(rounds), str(data),
                              str(REPO), str(threads)], capture_output=True, text=True, check=True)
        p50s.append(json.loads(out.stdout.strip().splitlines()[-1])["p50_ms"])
    return statistics.median(p50s)


def isolation(threads: int) -> dict:
    """Every shipped model's batch-1 p50 in one `--sketch-models=all` run vs its bare loop, alone in a fresh
    process with the same thread settings (``threads`` 0: the runtimes' defaults, unpinned)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "all.json"
        subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "--sketch-models=all", "-q",
                        "-p", "no:cacheprovider", f"--sketch-json={report}", f"--sketch-threads={threads}"],
                       cwd=REPO, capture_output=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        results = json.loads(report.read_text())["model_results"]
    rows = {}
    for model in MODELS:
        plugin = results[model]["timing_results"]["1"]["median_ms"]
        bare = bare_p50(model, threads)
        rows[model] = {"plugin_all_run_p50_ms": round(plugin, 4), "bare_fresh_process_p50_ms": round(bare, 4),
                       "ratio": round(plugin / bare, 3), "met": plugin / bare <= 1.3}
    return {"threads": threads or "runtime defaults", "models": rows, "bar": "each ratio <= 1.3",
            "met": all(r["met"] for r in rows.values())}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "import"
    if what == "import":
        print(json.dumps(import_overhead(), indent=1))
    elif what == "isolation":
        print(json.dumps(isolation(int(sys.argv[2]) if len(sys.argv) > 2 else 1), indent=1))
    else:
        raise SystemExit(__doc__)
