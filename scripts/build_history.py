"""Build a real benchmark history of the shipped ONNX model and measure what the history analysis finds in it.

Each run is a real pytest run of the benchmarks (accuracy on the whole bundled test split, relative speed against
the calibration workload at batch 1, latency, memory, size) of ``models/cnn.onnx`` under the name ``sut``, its
JSON report added to a SQLite history as one commit (``sketchbench history add``). At chosen runs the model file
is swapped for a copy (``scripts/make_slowed_model.py --extra-channels``: a dead convolution whose width is
calibrated to the factor, CPU time interleaved with its source in ONNX Runtime; ``make_perturbed_model.py``):

    runs  0–7   the model                     runs 16–19  a further 5 % slower (×1.155)
    runs  8–15  10 % slower                   runs 20–   also ~1 accuracy point lower (perturbed weights)
    runs 24–31  3 % slower every run (drift)  runs 32–   flat at the drift's end (×1.46)

Then every followed series is analysed (:func:`pytest_sketchbench.history.analysis.analyse`, default settings)
and the detection table is printed: each injected change in each series it must show in (the batch-1 latency
ratio to the calibration workload and the batch-1 p50 for the slowdowns, accuracy for the drop), found or not and
how many runs from where it was injected (a finding counts when it starts within 5 runs of the injection, or is a
drift over the injection point that is reported within 5 runs of it); a further step inside the drift's runs is
part of the drift; every other finding is a false alert, counted per 100 points. A second
table resamples unchanged series from the real runs of the unchanged model (each point drawn from the first 8
runs' values with replacement) to measure the false-alert rate over many points.

Checkpoints: each run's report stays in WORK/runs/; a re-run measures only the runs that are missing. Progress
goes to the log.

    python scripts/build_history.py --work /tmp/sketch-history --runs 40 --log scripts/logs/build_history.log
    python scripts/build_history.py --work /tmp/sketch-history --analyse-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

STEP_10, STEP_5, ACCURACY_AT, DRIFT = 8, 16, 20, (24, 31)
EVENTS = [  # (name, first run, last run, series it must show in)
    ("10 % slowdown", STEP_10, STEP_10, ("latency_ratio:calibration@1", "p50_ms@1")),
    ("5 % slowdown", STEP_5, STEP_5, ("latency_ratio:calibration@1", "p50_ms@1")),
    ("1-point accuracy drop", ACCURACY_AT, ACCURACY_AT, ("accuracy",)),
    ("3 %-per-run drift over 8 runs", DRIFT[0], DRIFT[1], ("latency_ratio:calibration@1", "p50_ms@1")),
]
WITHIN = 5  # runs from the injection point a finding may be
NOISE = 0.10  # the perturbation's spread (of each weight tensor's own): −1.08 accuracy points on cnn.onnx


def slowdown_at(run: int) -> float:
    level = 1.0
    if run >= STEP_10:
        level *= 1.10
    if run >= STEP_5:
        level *= 1.05
    if run >= DRIFT[0]:
        level *= 1.03 ** (min(run, DRIFT[1]) - DRIFT[0] + 1)
    return level


def log(path: Path | None, line: str) -> None:
    print(line, flush=True)
    if path:
        with path.open("a") as handle:
            handle.write(line + "\n")


def timed_ratio(base: Path, variant: Path, rounds: int = 1500) -> float:
    """variant ÷ base median CPU time per call at batch 1, interleaved (the clock the plugin's ratios use), one
    intra-op thread as the runs use (``--sketch-threads=1``: the shipped config's setting; two threads' spinning
    pool makes CPU time too noisy to calibrate a few percent)."""
    import onnxruntime as ort

    image = np.random.default_rng(0).random((1, 28, 28, 1), np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for path in (base, variant)]
    times: list[list[float]] = [[], []]
    for round_ in range(rounds + 100):
        for index, session in enumerate(sessions):
            started = time.process_time()
            session.run(None, {"image": image})
            if round_ >= 100:  # warm-up
                times[index].append(time.process_time() - started)
    return float(np.median(times[1]) / np.median(times[0]))


def calibrated(source: Path, target: Path, factor: float, logfile: Path | None) -> int:
    """A copy of ``source`` slower by ``factor``: the dead convolution's width (returned) found by the secant method
    on interleaved timings (median of three), within 1 % of the factor or after five tries."""
    import onnx
    from make_slowed_model import with_extra_work

    def ratio_with(channels: int) -> float:
        onnx.save(with_extra_work(onnx.load(source), channels), target)
        return float(np.median([timed_ratio(source, target) for _ in range(3)]))

    tried = [(0, 1.0), (guess := 400, ratio_with(400))]
    for _ in range(5):
        (c0, r0), (c1, r1) = tried[-2], tried[-1]
        if abs(r1 - factor) <= 0.01 * factor:
            break
        slope = (r1 - r0) / (c1 - c0) if c1 != c0 and r1 != r0 else (r1 - 1) / max(c1, 1)
        guess = max(1, round(c1 + (factor - r1) / slope)) if slope > 0 else c1 * 2
        tried.append((guess, ratio_with(guess)))
    channels, measured = min(tried[1:], key=lambda pair: abs(pair[1] - factor))
    if channels != tried[-1][0]:
        onnx.save(with_extra_work(onnx.load(source), channels), target)
    log(logfile, f"variant ×{factor:.4f} of {source.parent.name}: {channels} extra channels, measured ×{measured:.4f} "
                 f"(CPU time, interleaved, {len(tried) - 1} tries)")
    return channels


def variants(work: Path, runs: int, logfile: Path | None) -> dict[int, Path]:
    """The model file of each run (built once; the calibration is logged)."""
    import onnx
    from make_perturbed_model import perturbed

    folder = work / "models"
    folder.mkdir(parents=True, exist_ok=True)
    base = REPO / "models" / "cnn.onnx"
    plain, noisy = folder / "base" / "cnn.onnx", folder / "perturbed" / "cnn.onnx"
    for path in (plain, noisy):
        path.parent.mkdir(exist_ok=True)
        shutil.copy(REPO / "models" / "cnn.classes.json", path.with_name("cnn.classes.json"))
    if not plain.exists():
        shutil.copy(base, plain)
    if not noisy.exists():
        onnx.save(perturbed(onnx.load(base), float(NOISE))[0], noisy)
    # one width per factor, calibrated on the model itself: the perturbed copy at a factor gets the same extra work
    # (weights noise does not change the work), so swapping it in changes accuracy only
    widths_file = work / "widths.json"
    widths: dict[str, int] = json.loads(widths_file.read_text()) if widths_file.exists() else {}
    files: dict[int, Path] = {}
    for run in range(runs):
        factor, source = slowdown_at(run), noisy if run >= ACCURACY_AT else plain
        if factor == 1.0:
            files[run] = source
            continue
        key = f"{factor:.4f}"
        if key not in widths:
            probe = folder / "probe" / "cnn.onnx"
            probe.parent.mkdir(exist_ok=True)
            widths[key] = calibrated(plain, probe, factor, logfile)
            widths_file.write_text(json.dumps(widths, indent=1))
        path = folder / f"{source.parent.name}-x{key}" / "cnn.onnx"
        if not path.exists():
            from make_slowed_model import with_extra_work

            path.parent.mkdir(exist_ok=True)
            shutil.copy(REPO / "models" / "cnn.classes.json", path.with_name("cnn.classes.json"))
            onnx.save(with_extra_work(onnx.load(source), widths[key]), path)
        files[run] = path
    return files


CONFIG = """
[models.sut]
path = "{path}"

[sut]
min_accuracy = 0.5
max_latency_ratio = {{ reference = "calibration", max = 500.0 }}
"""


def measure(work: Path, run: int, model: Path, logfile: Path | None) -> Path:
    """One real run of the benchmarks, its JSON report kept as the checkpoint."""
    report = work / "runs" / f"run{run:03d}.json"
    if report.exists():
        return report
    report.parent.mkdir(parents=True, exist_ok=True)
    config = work / "config" / f"run{run:03d}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG.format(path=model))
    started = time.time()
    tests = ["test_accuracy.py::test_accuracy", "test_speed.py::test_relative_speed",
             "test_latency.py::test_single_drawing_latency", "test_resources.py::test_memory",
             "test_resources.py::test_model_size"]
    command = [sys.executable, "-m", "pytest", *(f"benchmarks/{test}" for test in tests), "-p", "no:cacheprovider",
               "-q", "--benchmark-disable", f"--sketch-config={config}", "--sketch-models=sut", "--sketch-threads=1",
               f"--sketch-json={report}.tmp"]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200)
    if not Path(f"{report}.tmp").exists():
        raise SystemExit(f"run {run} wrote no report (rc {out.returncode}):\n{out.stdout[-3000:]}{out.stderr[-2000:]}")
    Path(f"{report}.tmp").rename(report)
    result = json.loads(report.read_text())["model_results"]["sut"]
    ratio = (result.get("relative_speed") or {}).get("calibration@1", {}).get("ratio")
    log(logfile, f"run {run:3d}: {model.parent.name:<22} rc {out.returncode}, {time.time() - started:5.1f} s, "
                 f"accuracy {result['accuracy_results']['accuracy']:.4f}, ratio {ratio}, "
                 f"p50 {result['timing_results']['1']['median_ms']:.3f} ms")
    return report


def detection_table(series: dict, findings: list) -> tuple[list[str], int, int]:
    """Per event and series: found (kind, run, distance) or missed; then the false alerts."""
    from pytest_sketchbench.history.analysis import DEFAULT_METRICS  # noqa: F401 — the followed metrics

    lines, matched = [], set()
    for name, first, last, metrics in EVENTS:
        for metric in metrics:
            key = next(k for k in series if k[1] == metric)
            values = np.asarray([p.value for p in series[key]])
            shown = float(np.median(values[last + 1:last + 5]) / np.median(values[max(0, first - 4):first]) - 1)
            near = [f for f in findings if f.key == key and (first - WITHIN <= f.change.start <= last + WITHIN or (
                f.change.start <= first <= f.change.index <= last + WITHIN))]  # a drift reported by then, over it
            if near:
                best = min(near, key=lambda f: abs(f.change.start - first))
                matched.add(id(best))
                span = (f"runs {best.change.start}–{best.change.index}" if best.change.kind == "drift"
                        else f"run {best.change.start}")
                lines.append(f"| {name} | {metric} | {shown:+.1%} | found: {best.change.kind} at {span} "
                             f"({best.change.start - first:+d} runs), {best.change.relative:+.1%}, "
                             f"p = {best.change.p_value:.1g} | ✅ |")
            else:
                lines.append(f"| {name} | {metric} | {shown:+.1%} | missed | ❌ |")
    inside = [(first, last) for _, first, last, _ in EVENTS if last > first]  # a drift's span: each step in it is it
    false = [f for f in findings if id(f) not in matched and f.key[1] in {m for e in EVENTS for m in e[3]}
             and not any(first <= f.change.start <= last for first, last in inside)]
    for finding in false:
        lines.append(f"| (none injected) | {finding.key[1]} | | {finding.describe()} | false alert |")
    points = sum(len(series[k]) for k in series if k[1] in {m for e in EVENTS for m in e[3]})
    return lines, len(false), points


def resampled_false_alerts(series: dict, settings, length: int = 200, repeats: int = 25) -> tuple[int, int]:
    """Series of unchanged runs: each point drawn with replacement from the first 8 real runs (before any
    injection) of each latency series; the analysis on them, alerts counted."""
    from pytest_sketchbench.history.changes import find_changes

    rng, alerts, points = np.random.default_rng(0), 0, 0
    for key in series:
        if key[1] not in ("latency_ratio:calibration@1", "p50_ms@1"):
            continue
        clean = np.asarray([p.value for p in series[key][:STEP_10]])
        for _ in range(repeats):
            values = rng.choice(clean, size=length, replace=True)
            alerts += len(find_changes(values, settings=settings.for_metric(key[1])))
            points += length
    return alerts, points


def resampled_drifts(series: dict, settings, repeats: int = 100) -> list[str]:
    """The drift alone, on real noise: 40 points drawn with replacement from the first 8 real runs of each latency
    series, times an exact 3 %-per-run ramp over runs 24–31; how often it is reported, and as what."""
    from pytest_sketchbench.history.changes import find_changes

    rng, lines = np.random.default_rng(1), []
    ramp = np.array([1.03 ** min(max(run - DRIFT[0] + 1, 0), 8) for run in range(40)])
    for key in series:
        if key[1] not in ("latency_ratio:calibration@1", "p50_ms@1"):
            continue
        clean = np.asarray([p.value for p in series[key][:STEP_10]])
        kinds = {"drift": 0, "step": 0, "missed": 0}
        for _ in range(repeats):
            found = [c for c in find_changes(rng.choice(clean, 40) * ramp, settings=settings.for_metric(key[1]))
                     if DRIFT[0] - WITHIN <= c.start <= DRIFT[1] + WITHIN]
            kinds["drift" if any(c.kind == "drift" for c in found) else "step" if found else "missed"] += 1
        lines.append(f"{key[1]}: of {repeats} resampled series with an exact 3 %/run drift over runs 24–31, "
                     f"{kinds['drift']} reported as a drift, {kinds['step']} as a step only, {kinds['missed']} missed")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sketch-history"))
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    reports = sorted((args.work / "runs").glob("run*.json"))
    if not args.analyse_only:
        files = variants(args.work, args.runs, args.log)
        reports = [measure(args.work, run, files[run], args.log) for run in range(args.runs)]
    from pytest_sketchbench.cli import main as sketchbench
    from pytest_sketchbench.history.analysis import analyse, settings_from
    from pytest_sketchbench.history.store import open_store

    db = args.work / "history.db"
    db.unlink(missing_ok=True)
    for index, report in enumerate(reports):
        sketchbench(["history", "add", str(report), "--db", str(db), "--branch", "main", "--commit",
                     f"{index:04d}" + "0" * 36])
    store = open_store(str(db))
    series = store.series()
    store.close()
    settings = settings_from({}, "defaults")
    findings = analyse(series, settings)
    lines, false, points = detection_table(series, findings)
    found = sum("✅" in line for line in lines)
    expected = sum(len(event[3]) for event in EVENTS)
    log(args.log, f"\n{len(reports)} runs; detection table (default [history] settings):\n")
    log(args.log, "| injected | series | level change in the series (median of 4 runs after ÷ 4 before) | finding "
                  "| |\n|---|---|---|---|---|")
    for line in lines:
        log(args.log, line)
    log(args.log, f"\nfound {found} of {expected} injected changes within {WITHIN} runs ({found / expected:.0%}); "
                  f"{false} false alerts in {points} points ({false / points * 100:.2f} per 100)")
    alerts, resampled = resampled_false_alerts(series, settings)
    log(args.log, f"resampled unchanged series (points drawn with replacement from the first {STEP_10} real runs): "
                  f"{alerts} alerts in {resampled} points ({alerts / resampled * 100:.2f} per 100)")
    for line in resampled_drifts(series, settings):
        log(args.log, line)
    sketchbench(["history", "show", "--db", str(db), "--html", str(args.work / "trend.html"),
                 "--markdown", str(args.work / "trend.md")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
