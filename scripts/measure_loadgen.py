"""The plugin's LoadGen figures against LoadGen driven by a bare script over the same SUT, in one run.

    python scripts/measure_loadgen.py [--rounds 2]

Starts the README's model server (``scripts/serve_model.py``) on a free port, then for the local
``onnx`` model and the served ``served-cnn`` alternates (round by round, which goes first too) two ways of
running the same
scenarios with the settings of ``thresholds.toml``'s ``[<model>.loadgen]``:
- *bare*: this script's own minimal LoadGen driver (SUT = a thread pool calling the model plugin's
  ``predict``; QSL = the test drawings), one core and one runtime thread as the plugin's runs have;
- *plugin*: ``pytest benchmarks/test_loadgen.py --sketch-models=<model>``, figures read from its JSON.
It prints, per model, the Server peak QPS LoadGen's search found under the p99 bound, the highest rate from
there down (5 % steps) that a full run confirmed valid (early stopping included), the p99 there and the
Offline QPS, each as medians over the rounds with plugin ÷ bare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def bare_loadgen(predict, images, scenario: str, mode: str, table: dict, outdir: Path, concurrency: int,
                 target_qps: float | None = None, expected_qps: float | None = None) -> dict:
    """LoadGen with nothing of the plugin's: our own SUT callbacks and QSL, LoadGen's own summary."""
    import mlperf_loadgen as lg

    pool = ThreadPoolExecutor(concurrency)
    batch = int(table.get("offline_batch_size", 64)) if scenario == "Offline" else 1

    def complete(samples):
        labels = np.ascontiguousarray(np.argmax(predict(images[[s.index for s in samples]]), axis=1), dtype=np.int64)
        address = labels.__array_interface__["data"][0]
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, address + 8 * i, 8) for i, s in enumerate(samples)])

    def issue(samples):
        for start in range(0, len(samples), batch):
            pool.submit(complete, samples[start:start + batch])

    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = getattr(lg.TestMode, mode)
    settings.min_duration_ms = int(table.get("min_duration_ms", 2000))
    settings.min_query_count = int(table.get("min_query_count", 1024))
    if scenario == "Server":
        settings.server_target_qps = float(target_qps)
        settings.server_target_latency_ns = int(table["server_max_p99_ms"] * 1e6)
        settings.server_target_latency_percentile = 0.99
        settings.server_find_peak_qps_decimals_of_precision = 0
    else:
        settings.offline_expected_qps = float(expected_qps)
    outdir.mkdir(parents=True, exist_ok=True)
    logs = lg.LogSettings()
    logs.log_output.outdir = str(outdir)
    logs.log_output.copy_summary_to_stdout = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(images), len(images), lambda _: None, lambda _: None)
    lg.StartTestWithLogSettings(sut, qsl, settings, logs)
    pool.shutdown(wait=True)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    entries = {}
    for line in (outdir / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[9:])
            if entry["key"] == "generic_message" and "Found peak performance field" in str(entry["value"]):
                entries["peak"] = float(str(entry["value"]).rsplit(":", 1)[1])
            entries[entry["key"]] = entry["value"]
    return entries


def bare_round(plugin, images, table: dict, outdir: Path) -> dict:
    concurrency = int(table.get("concurrency") or plugin.config.get("concurrency") or 1)
    search = bare_loadgen(plugin.predict, images, "Server", "FindPeakPerformance", table, outdir / "search",
                          concurrency, target_qps=table["min_server_peak_qps"])
    rate = search["peak"]
    for _ in range(6):  # down in 5 % steps until a full run is valid, as the plugin does
        at_peak = bare_loadgen(plugin.predict, images, "Server", "PerformanceOnly", table, outdir / "peak",
                               concurrency, target_qps=rate)
        if at_peak["result_validity"] == "VALID":
            break
        rate = round(rate * 0.95, 1)
    offline_qps = None
    expected = 2000.0
    for _attempt in range(3):  # the plugin re-sets LoadGen's expected rate the same way
        offline = bare_loadgen(plugin.predict, images, "Offline", "PerformanceOnly", table, outdir / "offline",
                               concurrency, expected_qps=expected)
        offline_qps = offline["result_samples_per_second"]
        if offline.get("result_min_duration_met"):
            break
        expected = 1.5 * offline_qps
    return {"peak_qps": search["peak"], "valid_qps": rate, "valid": at_peak["result_validity"] == "VALID",
            "early_stopping_met": at_peak.get("early_stopping_met"),
            "p99_ms": at_peak["result_99.00_percentile_latency_ns"] / 1e6, "offline_qps": offline_qps}


def plugin_round(name: str, config: Path, outdir: Path) -> dict:
    report = outdir / "r.json"
    subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_loadgen.py", f"--sketch-models={name}", "-q",
                    f"--sketch-config={config}", f"--sketch-json={report}", f"--sketch-report-dir={outdir}",
                    "-k", "ServerPeak or Offline", "-p", "no:cacheprovider"], cwd=REPO, check=False,
                   capture_output=True, text=True)
    runs = json.loads(report.read_text())["model_results"][name]["loadgen"]
    peak = runs["ServerPeak"]
    return {"peak_qps": peak["peak_qps"], "valid_qps": peak["valid_qps"], "valid": peak["valid"],
            "early_stopping_met": peak["early_stopping_met"],
            "p99_ms": peak["p99_ms"], "offline_qps": runs["Offline"]["qps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default="onnx,served-cnn", help="comma list of onnx, served-cnn")
    args = parser.parse_args()
    from test_served import mlserver  # the tests' server helper: the README command on a free port

    from pytest_sketchbench.data import load_dataset
    from pytest_sketchbench.models.onnx_model import OnnxModel
    from pytest_sketchbench.models.v2_model import OpenInferenceModel

    shipped = tomllib.loads((REPO / "thresholds.toml").read_text())
    images = load_dataset(REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz").images
    work = Path(tempfile.mkdtemp(prefix="measure-loadgen-"))
    results: dict[str, dict[str, list[dict]]] = {}
    cpus = sorted(os.sched_getaffinity(0))
    with mlserver(log=work / "server.log", cpus=str(cpus[-1]) if len(cpus) > 1 else "") as url:
        text = (REPO / "thresholds.toml").read_text().replace('"http://127.0.0.1:8080"', f'"{url}"')
        text = text.replace('categories = "models/', f'categories = "{REPO}/models/')
        config = work / "thresholds.toml"
        config.write_text(text)
        served_config = {k: v for k, v in shipped["models"]["served-cnn"].items() if k != "runtime"}
        plugins = {"onnx": OnnxModel("onnx", {"path": str(REPO / "models" / "cnn.onnx"), "threads": 1}),
                   "served-cnn": OpenInferenceModel("served-cnn", {**served_config, "url": url,
                                                                   "categories": str(REPO / "models" /
                                                                                     "cnn.classes.json")})}
        os.sched_setaffinity(0, {cpus[0]})  # as the plugin's runs ([sketchbench] threads = 1); the server: the last
        for plugin in plugins.values():
            plugin.load()
        for round_number in range(args.rounds):
            for name in args.models.split(","):
                plugin, table = plugins[name], shipped[name]["loadgen"]
                started = time.time()
                order = ("bare", "plugin") if round_number % 2 == 0 else ("plugin", "bare")  # no order effect
                measured = {}
                for way in order:
                    folder = work / f"{way}-{name}-{round_number}"
                    measured[way] = (bare_round(plugin, images, table, folder) if way == "bare"
                                     else plugin_round(name, config, folder))
                bare, via = measured["bare"], measured["plugin"]
                results.setdefault(name, {"bare": [], "plugin": []})
                results[name]["bare"].append(bare)
                results[name]["plugin"].append(via)
                print(f"round {round_number + 1} {name} ({time.time() - started:.0f} s): bare {bare}, plugin {via}",
                      flush=True)
    print(f"\nmedians of {args.rounds} rounds (logs: {work})")
    print("| model | figure | bare script | plugin | plugin ÷ bare |\n| --- | --- | ---: | ---: | ---: |")
    for name, by_way in results.items():
        for figure in ("peak_qps", "valid_qps", "p99_ms", "offline_qps"):
            bare = statistics.median(r[figure] for r in by_way["bare"])
            via = statistics.median(r[figure] for r in by_way["plugin"])
            print(f"| {name} | {figure} | {bare:,.1f} | {via:,.1f} | {via / bare:.3f} |")
        verdicts = [(r["valid"], r["early_stopping_met"]) for way in ("bare", "plugin") for r in by_way[way]]
        print(f"| {name} | valid at peak, early stopping met (bare…, plugin…) | {verdicts} | | |")


if __name__ == "__main__":
    main()
