"""Reproduce the model cards: every shipped file in its own runtime on the bundled test split.

    python models/evaluate.py [--json models/evaluation.json]

Prints accuracy (overall, per category, exact vs approximate renders), the agreement rate of
runtimes that share one network (cnn.h5 and its exports: cnn.onnx, cnn-int8.onnx, cnn.pt, cnn.tflite,
cnn-int8.tflite), the largest probability difference of each fp32 export, and single-drawing
latency p50 through each runtime — including a bare ``session.run`` loop for ONNX Runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(MODELS_DIR.parent))

from pytest_sketchbench.data import load_dataset  # noqa: E402
from pytest_sketchbench.measure import accuracy_pass  # noqa: E402
from pytest_sketchbench.metrics import accuracy_report  # noqa: E402
from pytest_sketchbench.models.registry import BUILTINS, RUNTIMES, ModelSpec  # noqa: E402

SHIPPED = ["cnn", "onnx", "onnx-int8", "torch", "tflite", "tflite-int8", "mobilenet"]
EXPORTS_OF_CNN = ("onnx", "onnx-int8", "torch", "tflite", "tflite-int8")


def single_drawing_p50_ms(plugin, image: np.ndarray, rounds: int = 500) -> float:
    prepared = plugin.prepare(image[None])
    for _ in range(20):
        plugin.infer(prepared)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        plugin.infer(prepared)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=str(MODELS_DIR / "evaluation.json"))
    parser.add_argument("--models", default=",".join(SHIPPED),
                        help="comma-separated subset; the others' entries in --json are kept")
    args = parser.parse_args()
    dataset = load_dataset(MODELS_DIR.parent / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz")
    results, predictions, probabilities = {}, {}, {}
    for name in [m for m in SHIPPED if m in args.models.split(",")]:
        runtime, relative, options = BUILTINS[name]
        path = MODELS_DIR / relative
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            continue
        plugin = ModelSpec(name, RUNTIMES[runtime].plugin, {"path": str(path), **options}).create()
        plugin.import_runtime()
        plugin.load()
        result = accuracy_pass(plugin, dataset, 256)
        report = accuracy_report(result.probabilities, result.predicted, dataset.labels, dataset.categories)
        correct = result.predicted == dataset.labels
        info = plugin.describe()
        results[name] = {
            "runtime": info.runtime, "file_size_bytes": info.file_size_bytes, "parameters": info.parameter_count,
            "input_shape": info.input_shape, "accuracy": report.accuracy, "ci95": report.accuracy_ci95,
            "top5": report.top5_accuracy, "macro_f1": report.macro_f1,
            "exact_rows_accuracy": float(correct[dataset.exact].mean()),
            "approximate_rows_accuracy": float(correct[~dataset.exact].mean()),
            "per_category": {c: round(row.accuracy, 4) for c, row in report.per_category.items()},
            "p50_single_ms": single_drawing_p50_ms(plugin, dataset.images[0]),
            "accuracy_pass_throughput_per_s": result.throughput,
        }
        predictions[name] = result.predicted
        probabilities[name] = result.probabilities
        print(f"{name:10s} acc {report.accuracy:.4f} [{report.accuracy_ci95[0]:.4f}–"
              f"{report.accuracy_ci95[1]:.4f}] top5 {report.top5_accuracy:.4f} "
              f"p50@1 {results[name]['p50_single_ms']:.3f} ms  ({info.runtime})")
        if name == "onnx":
            session, feed = plugin.session, plugin.prepare(dataset.images[:1])
            bare = []
            for _ in range(500):
                start = time.perf_counter()
                session.run(None, feed)
                bare.append(time.perf_counter() - start)
            results[name]["bare_session_run_p50_ms"] = float(np.median(bare) * 1000)
        plugin.release()
    agreement = {}
    for other in EXPORTS_OF_CNN:
        if "cnn" in predictions and other in predictions:
            agreement[f"cnn vs {other}"] = float(np.mean(predictions["cnn"] == predictions[other]))
            results[other]["max_probability_diff_vs_cnn"] = float(np.abs(probabilities["cnn"]
                                                                         - probabilities[other]).max())
    for pair, rate in agreement.items():
        print(f"agreement {pair}: {rate:.4f} (max |Δp| "
              f"{results[pair.split(' vs ')[1]]['max_probability_diff_vs_cnn']:.1e})")
    previous = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    if previous.get("test_samples") == len(dataset):  # same test split: keep the models not re-evaluated
        results = {**previous.get("models", {}), **results}
        agreement = {**previous.get("agreement", {}), **agreement}
    Path(args.json).write_text(json.dumps({"test_samples": len(dataset), "models": results,
                                           "agreement": agreement}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
