"""Every hostile model file of issue #33, selected at once beside two healthy models, in one real run.

Builds each payload (its only effect, were it to run, is a marker file in a scratch folder), writes a config that
names them all next to the project's own limits, runs ``pytest benchmarks/`` with JSON, HTML, CSV and summary
reports, and checks what the issue asks: each hostile model is refused with one line, no marker exists, the
healthy models are measured and judged normally, and every report is whole. Prints a table and exits 1 on any
miss; ``--log`` appends the table to a file.

    python scripts/run_hostile_models.py --healthy onnx,cnn --log scripts/logs/hostile_models.log
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


class Marker:
    """Unpickling this creates the marker file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _torch_saved(obj) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _pt2(folder: Path, name: str, marker: Path, change: str) -> Path:
    """A real torch.export archive with one hostile entry: a use_pickle weight, pickled sample inputs, a legacy
    pickled state dict, or a compiled AOTInductor library."""
    import torch

    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 23)).eval()
    good = folder / f"{name}-good.pt2"
    torch.export.save(torch.export.export(network, (torch.zeros(1, 28, 28, 1),)), str(good))
    target = folder / f"{name}.pt2"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(target, "w") as new:
        root = old.infolist()[0].filename.split("/")[0]
        for info in old.infolist():
            entry, data = info.filename.split("/", 1)[1], old.read(info)
            if change == "use_pickle" and entry == "data/weights/model_weights_config.json":
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            elif change == "use_pickle" and entry == "data/weights/weight_0":
                data = _torch_saved(Marker(marker))
            elif change == "sample_inputs" and entry.startswith("data/sample_inputs/"):
                data = _torch_saved(Marker(marker))
            new.writestr(info.filename, data)
        if change == "legacy_pickle":
            new.writestr(f"{root}/data/weights/model.pt", pickle.dumps(Marker(marker)))
        if change == "aotinductor":
            new.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    good.unlink()
    return target


def _tfjs_graph(folder: Path, name: str, marker: Path, write: bool) -> Path:
    """A TF.js graph model: one whose output depends on a WriteFile node, or one whose weight shard lies outside
    its folder (``../``)."""
    out = folder / name
    out.mkdir()
    string = {"dtype": "DT_STRING", "tensorShape": {}}
    nodes = [{"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {
        "dim": [{"size": "-1"}, {"size": "28"}, {"size": "28"}, {"size": "1"}]}}}},
             {"name": "y", "op": "Softmax", "input": ["x", "^write"] if write else ["x"],
              "attr": {"T": {"type": "DT_FLOAT"}}}]
    manifest: list[dict] = [{"paths": [], "weights": []}]
    if write:
        nodes += [{"name": "path", "op": "Const", "attr": {"dtype": {"type": "DT_STRING"}, "value": {"tensor": {
                      **string, "stringVal": [base64.b64encode(str(marker).encode()).decode()]}}}},
                  {"name": "body", "op": "Const", "attr": {"dtype": {"type": "DT_STRING"}, "value": {"tensor": {
                      **string, "stringVal": ["eA=="]}}}},
                  {"name": "write", "op": "WriteFile", "input": ["path", "body"]}]
    else:
        manifest = [{"paths": ["../../../../etc/hostname"], "weights": [{"name": "w", "shape": [1],
                                                                         "dtype": "float32"}]}]
    spec = {"format": "graph-model", "modelTopology": {"node": nodes, "versions": {"producer": 1}},
            "weightsManifest": manifest}
    (out / "model.json").write_text(json.dumps(spec))
    return out / "model.json"


def _writes_marker(tf, marker: Path):
    class Writes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 28, 28, 1], tf.float32)])
        def serve(self, x):
            with tf.control_dependencies([tf.io.write_file(str(marker), "x")]):
                return {"output": tf.nn.softmax(tf.reshape(x, [-1, 784])[:, :23])}

    return Writes()


def _savedmodel(folder: Path, name: str, marker: Path) -> Path:
    import tensorflow as tf

    module = _writes_marker(tf, marker)
    tf.saved_model.save(module, str(folder / name), signatures={"serving_default": module.serve})
    return folder / name


def _tflite_flex(folder: Path, name: str, marker: Path) -> Path:
    import tensorflow as tf

    module = _writes_marker(tf, marker)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    (folder / f"{name}.tflite").write_bytes(converter.convert())
    return folder / f"{name}.tflite"


def _keras_lambda(folder: Path, name: str, marker: Path) -> Path:
    """A .keras file whose Lambda layer carries Python bytecode that would create the marker."""
    import keras

    inputs = keras.Input((28, 28, 1))
    touched = keras.layers.Lambda(lambda x, m=str(marker): (__import__("pathlib").Path(m).touch(), x)[1])(inputs)
    outputs = keras.layers.Dense(23, activation="softmax")(keras.layers.Flatten()(touched))
    path = folder / f"{name}.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def onnx_with_external_weights(path: Path, location: str) -> Path:
    """A valid ONNX graph (784 → 23) whose one weight is external data at ``location``, read when it loads."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((784, 23), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(784 * 23 * 4))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 28, 28, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 23])],
        [weight, numpy_helper.from_array(np.array([-1, 784], np.int64), "shape")])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _onnx_outside(folder: Path, name: str, marker: Path) -> Path:
    """An .onnx file whose weights are external data in a file outside its folder."""
    (folder / "secret.bin").write_bytes(b"\0" * 784 * 23 * 4)
    return onnx_with_external_weights(folder / name / f"{name}.onnx", "../secret.bin")


def _fifo(folder: Path, name: str, marker: Path) -> Path:
    os.mkfifo(folder / f"{name}.onnx")
    return folder / f"{name}.onnx"


# name → (runtime, builder, a phrase the one-line refusal must hold)
HOSTILE: dict[str, tuple[str, Callable[[Path, str, Path], Path], str]] = {
    "pt2-use-pickle": ("torch-export", lambda f, n, m: _pt2(f, n, m, "use_pickle"), "is a pickle"),
    "pt2-sample-inputs": ("torch-export", lambda f, n, m: _pt2(f, n, m, "sample_inputs"), "is a pickle"),
    "pt2-legacy-pickle": ("torch-export", lambda f, n, m: _pt2(f, n, m, "legacy_pickle"), "is a pickle"),
    "pt2-aotinductor": ("torch-export", lambda f, n, m: _pt2(f, n, m, "aotinductor"), "is compiled code"),
    "tfjs-writefile": ("tfjs", lambda f, n, m: _tfjs_graph(f, n, m, write=True), "op 'WriteFile' is not a TF.js op"),
    "tfjs-shard-outside": ("tfjs", lambda f, n, m: _tfjs_graph(f, n, m, write=False), "is not a file in the model"),
    "savedmodel-writefile": ("savedmodel", _savedmodel, "uses WriteFile"),
    "tflite-flex": ("tflite", _tflite_flex, "op 'FlexWriteFile' is a TensorFlow op"),
    "keras-lambda": ("keras", _keras_lambda, "Lambda"),
    "onnx-data-outside": ("onnx", _onnx_outside, "escapes model directory"),
    "onnx-fifo": ("onnx", _fifo, "is not a regular file or folder"),
}


def build(folder: Path, scratch: Path) -> dict[str, tuple[Path, Path]]:
    """Every payload: name → (model path, the marker it would create)."""
    built = {}
    for name, (_, builder, _) in HOSTILE.items():
        marker = scratch / f"marker-{name}"
        built[name] = (builder(folder, name, marker), marker)
        marker.unlink(missing_ok=True)  # a Lambda runs once while Keras builds the model here: that one is ours
    return built


def config_text(built: dict[str, tuple[Path, Path]]) -> str:
    """The project's own limits, and a [models.<name>] table per payload."""
    tables = [(REPO / "thresholds.toml").read_text()]
    categories = json.dumps(json.loads((REPO / "models" / "cnn.classes.json").read_text())["categories"])
    for name, (path, _) in built.items():
        tables.append(f'[models.{name}]\npath = "{path}"\nruntime = "{HOSTILE[name][0]}"\n'
                      f"categories = {categories}\ntimeout_s = 120\n")
    return "\n".join(tables)


def _checks(record: dict) -> dict[str, str]:
    return {f"{v['test'].split('::')[-1]} {v['check']}": v["status"] for v in record.get("threshold_verdicts") or []}


def check(report: dict, built: dict, healthy: list[str], reports: Path, control: dict | None
          ) -> list[tuple[str, str, str]]:
    """(model, outcome, the line it got) per model, and the misses as outcome 'MISS'. A healthy model must have the
    accuracy and the check statuses it has in the control run without the payloads (where one was made)."""
    rows = []
    results = report["model_results"]
    for name, (_, marker) in built.items():
        record = results.get(name) or {}
        errors = record.get("errors") or []
        refused = (record.get("status") == "error" and len(errors) == 1 and "\n" not in errors[0]
                   and HOSTILE[name][2] in errors[0])
        outcome = "refused" if refused and not marker.exists() else "MISS" + (" (marker written)" * marker.exists())
        rows.append((name, outcome, errors[0] if errors else f"status {record.get('status')!r}, no error"))
    for name in healthy:
        record = results.get(name) or {}
        accuracy = (record.get("accuracy_results") or {}).get("accuracy")
        fine = record.get("status") in ("passed", "inconclusive") and accuracy is not None and not record.get("errors")
        checks = _checks(record)
        text = f"accuracy {accuracy}, checks {sorted(checks.values()).count('passed')} passed of {len(checks)}"
        if control is not None:
            alone = control["model_results"].get(name) or {}
            same = (alone.get("accuracy_results") or {}).get("accuracy") == accuracy and _checks(alone) == checks
            fine = fine and same
            text += "; the same as alone" if same else f"; alone: {_checks(alone)} vs {checks}"
        rows.append((name, record.get("status", "absent") if fine else "MISS", text))
    for file in ("results.json", "results.csv", "summary.md", "report.html"):
        path = reports / file
        whole = path.exists() and path.stat().st_size > 0
        if whole and file == "results.json":
            whole = set(json.loads(path.read_text())["model_results"]) >= set(built) | set(healthy)
        rows.append((file, "whole" if whole else "MISS", str(path)))
    return rows


def _run(work: Path, reports: Path, models: list[str], extra: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", str(REPO / "benchmarks"), "-p", "no:cacheprovider", "-q",
               f"--rootdir={REPO}", f"--sketch-config={work / 'thresholds.toml'}",
               f"--sketch-models={','.join(models)}",
               f"--sketch-json={reports / 'results.json'}", f"--sketch-html={reports / 'report.html'}",
               f"--sketch-report-dir={reports}", *extra]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    (reports / "pytest.log").write_text(run.stdout + run.stderr)
    return run


def _report(reports: Path) -> dict:
    path = reports / "results.json"
    return json.loads(path.read_text()) if path.exists() else {"model_results": {}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", default="onnx,cnn", help="healthy built-in models to run beside them")
    parser.add_argument("--work", type=Path, help="keep the payloads and reports here (default: a temp folder)")
    parser.add_argument("--log", type=Path, help="append the table to this file")
    parser.add_argument("--control", action="store_true", help="also run the healthy models alone and compare")
    parser.add_argument("pytest_args", nargs="*", help="more pytest options, after --")
    args = parser.parse_args()
    healthy = [m for m in args.healthy.split(",") if m]
    with tempfile.TemporaryDirectory() as temp:
        work = args.work or Path(temp)
        folder, scratch, reports = work / "models", work / "scratch", work / "reports"
        for path in (folder, scratch, reports):
            path.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        built = build(folder, scratch)
        build_s = time.monotonic() - started
        (work / "thresholds.toml").write_text(config_text(built))
        control = None
        if args.control:
            (work / "alone").mkdir(exist_ok=True)
            _run(work, work / "alone", healthy, args.pytest_args)
            control = _report(work / "alone")
        started = time.monotonic()
        run = _run(work, reports, [*healthy, *built], args.pytest_args)
        run_s = time.monotonic() - started
        rows = check(_report(reports), built, healthy, reports, control)
        leftover = sorted(p.name for p in scratch.iterdir())
    misses = [row for row in rows if row[1].startswith("MISS")] + [("scratch", "MISS", m) for m in leftover]
    lines = [f"# {time.strftime('%Y-%m-%d %H:%M')} run_hostile_models.py: {len(built)} hostile + "
             f"{len(healthy)} healthy models in one run; build {build_s:.0f} s, run {run_s:.0f} s, "
             f"pytest rc {run.returncode}, markers written {len(leftover)}, misses {len(misses)}"]
    lines += [f"{name:22} {outcome:12} {text[:150]}" for name, outcome, text in rows]
    print("\n".join(lines))
    if args.log:
        with args.log.open("a") as handle:
            handle.write("\n".join(lines) + "\n\n")
    return 1 if misses or run.returncode not in (0, 1) else 0


if __name__ == "__main__":
    sys.exit(main())
