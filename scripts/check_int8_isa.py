"""The shipped int8 files on another instruction set: accuracy and agreement with the float model, per CPU.

    python scripts/check_int8_isa.py                      # this CPU
    python scripts/check_int8_isa.py --emulate Haswell    # the same loop under QEMU's user-mode emulator, whose
                                                          # Haswell CPU has AVX2 but no AVX-512 and no VNNI
    python scripts/check_int8_isa.py --emulate Haswell --files /tmp/old-int8.onnx --per-category 40

Why an emulator: the int8 kernels of ONNX Runtime (MLAS) and LiteRT (XNNPACK) pick their code path from CPUID at
run time, and on an x86 CPU without VNNI they add uint8 × int8 products pairwise into int16 (``VPMADDUBSW``),
which saturates unless the weights keep to 7 bits. This machine has AVX-512 VNNI, so its own runs never take that
path. ``qemu-x86_64 -cpu Haswell`` (Debian's ``qemu-user``; QEMU 7.2+ emulates AVX2, and has no AVX-512 at all)
makes CPUID say AVX2-only, and the runtimes take their AVX2 path, instruction by instruction. The script prints
the CPU features it saw, so a run says which path it measured; the control is the old 8-bit file (from git:
``git show 6ea9381:models/cnn-int8.onnx``), which scored 0.883 on a real AVX2-only EPYC (issue #30).

Not part of the test suite: a measurement (minutes under emulation). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPLIT = REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz"
DEFAULT_FILES = ["models/cnn-int8.onnx", "models/cnn-int8.tflite"]
FEATURES = ("AVX2", "AVX512F", "AVX512BW", "AVX512_CNL", "AVX512_ICL", "FMA3")  # numpy's names (ICL: VNNI among them)


def cpu_features() -> dict[str, bool]:
    """What CPUID says, as numpy's dispatcher read it at import (the same CPUID the runtimes read)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as found
    return {name: bool(found.get(name)) for name in FEATURES}


def predict_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 256]})[0] for i in range(0, len(x), 256)])


def predict_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for i in range(0, len(x), 256):
        batch = x[i:i + 256]
        interpreter.resize_tensor_input(source["index"], list(batch.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], batch)
        interpreter.invoke()
        rows.append(interpreter.get_tensor(sink["index"]).copy())
    return np.concatenate(rows)


def measure(files: list[str], per_category: int) -> dict:
    split = np.load(SPLIT)
    images, labels = split["images"], split["labels"].astype(np.int64)
    if per_category:  # the first N of each category: a stratified sample that two CPUs read alike
        rows = np.concatenate([np.flatnonzero(labels == c)[:per_category] for c in np.unique(labels)])
        images, labels = images[rows], labels[rows]
    x = (images.astype(np.float32) / 255.0)[..., None]
    start = time.perf_counter()
    reference = predict_onnx(REPO / "models" / "cnn.onnx", x).argmax(axis=1)
    out = {"cpu_features": cpu_features(), "drawings": len(labels),
           "cnn.onnx": {"accuracy": round(float((reference == labels).mean()), 4)}}
    for name in files:
        path = Path(name) if Path(name).is_absolute() else REPO / name
        predicted = (predict_tflite if path.suffix == ".tflite" else predict_onnx)(path, x).argmax(axis=1)
        out[name] = {"accuracy": round(float((predicted == labels).mean()), 4),
                     "agreement_with_cnn": round(float((predicted == reference).mean()), 4),
                     "differ": int((predicted != reference).sum()),
                     "answers_sha256": hashlib.sha256(predicted.astype(np.int64).tobytes()).hexdigest()[:16]}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulate", metavar="QEMU_CPU", help="run under qemu-x86_64 -cpu QEMU_CPU (e.g. Haswell)")
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    parser.add_argument("--per-category", type=int, default=0, help="the first N drawings of each category (0: all)")
    args = parser.parse_args()
    if args.emulate:
        qemu = shutil.which("qemu-x86_64")
        if qemu is None:
            sys.exit("qemu-x86_64 not found — install Debian's qemu-user (apt-get install qemu-user)")
        command = [qemu, "-cpu", args.emulate, sys.executable, __file__, "--files", *args.files,
                   "--per-category", str(args.per_category)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            sys.exit(f"under qemu -cpu {args.emulate}: exit {result.returncode}: {result.stderr.strip()[-400:]}")
        report = json.loads(result.stdout)
        report["emulated_cpu"] = args.emulate
        print(json.dumps(report, indent=1))
        return
    print(json.dumps(measure(args.files, args.per_category), indent=1))


if __name__ == "__main__":
    main()
