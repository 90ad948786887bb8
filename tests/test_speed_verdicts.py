"""Speed verdicts that hold on any machine: relative limits timed interleaved and decided sequentially, pass,
fail or inconclusive, percentile sample rules, and the same-run A/B gate against the baseline's model files.
The tests that time a run are marked ``alone`` (under pytest -n nothing runs beside them); the others are not timed."""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
import warnings

import numpy as np
import pytest

from conftest import REPO, judged_on_this_host

# A model whose every call sleeps for the time its weights file says: speed is then a property of the
# file, as it is for real models (the A/B gate loads the baseline's file of the same model).
SLEEPY = textwrap.dedent('''
    import time
    import numpy as np
    from pytest_sketchbench import ModelInfo, ModelPlugin, register_model

    class Sleepy(ModelPlugin):
        runtime = "sleep"

        def load(self):
            data = np.load(self.require_file())
            self.sleep_s, self.categories = float(data["sleep_s"]), [str(c) for c in data["categories"]]
            self.calls = 0

        def infer(self, prepared):
            self.calls += 1
            sleep = self.sleep_s
            if isinstance(sleep, list):  # jitter: cycle through the listed sleeps
                sleep = sleep[self.calls % len(sleep)]
            time.sleep(sleep)
            return np.zeros((len(prepared), len(self.categories)), np.float32)

        def describe(self):
            return ModelInfo(self.name, self.runtime, "1", "grayscale", [None, 28, 28, 1], self.categories,
                             str(self.path), 100, 1)

    register_model("slow", path="models/slow.npz")(Sleepy)
    register_model("fast", path="models/fast.npz")(Sleepy)
''')

SPEED_TEST = "def test_relative_speed(sketch_relative_speed, sketch_thresholds):\n" \
             "    sketch_thresholds.check_ratios(sketch_relative_speed)\n"
FAST_RUN = ("--sketch-samples-per-category=2", "--sketch-batch-sizes=1", "-p", "no:cacheprovider")


@pytest.fixture
def sleepy(pytester, bundled):
    def write(folder: str, name: str, sleep_s: float) -> None:
        (pytester.path / folder).mkdir(exist_ok=True)
        np.savez(pytester.path / folder / f"{name}.npz", sleep_s=sleep_s, categories=np.array(bundled.categories))

    write("models", "slow", 0.004)
    write("models", "fast", 0.002)
    pytester.makeconftest(SLEEPY)
    pytester.makepyfile(test_speed=SPEED_TEST)
    pytester.write = write
    return pytester


def _verdicts(path) -> dict:
    results = json.loads(path.read_text())["model_results"]
    return {v["check"]: v for record in results.values() for v in record["threshold_verdicts"]}


@pytest.mark.alone
def test_interleaved_ratio_of_two_known_sleeps_comes_out_right(sleepy, tmp_path):
    sleepy.makefile(".toml", thresholds='[slow]\nmax_latency_ratio = { reference = "fast", max = 10.0 }\n')
    result = sleepy.runpytest("--sketch-models=slow", f"--sketch-json={tmp_path}/r.json", "--sketch-latency-budget=0.3",
                              *FAST_RUN)
    verdict = _verdicts(tmp_path / "r.json")["max_latency_ratio:fast@1"]
    assert "interleaved rounds" in verdict["message"]
    if not judged_on_this_host(result):  # contention moves even this ratio: inconclusive, never a guess
        result.assert_outcomes(skipped=1)
        pytest.skip("a busy host: the ratio was not judged")
    result.assert_outcomes(passed=1)
    assert verdict["measured"] == pytest.approx(2.0, rel=0.05)  # 4 ms ÷ 2 ms, timed side by side
    assert verdict["passed"] is True


@pytest.mark.alone
def test_latency_ratio_fails_only_past_the_whole_interval_with_the_message(sleepy):
    sleepy.makefile(".toml", thresholds='[slow]\nmax_latency_ratio = { reference = "fast", max = 1.5 }\n')
    result = sleepy.runpytest("--sketch-models=slow", "--sketch-latency-budget=0.2", "-rs", *FAST_RUN)
    result.assert_outcomes(failed=1) if judged_on_this_host(result) else result.assert_outcomes(skipped=1)
    result.stdout.re_match_lines([r".*slow p[15]0 ratio to fast 1\.9\d*× \(99\.3% CI 1\.\d+–[12]\.\d+\) > max 1\.5 "
                                  r"at batch 1 \([\d,]+ interleaved rounds, 1 look, wall time decided; wall p50 "
                                  r"slow 4\.\d+ ms, fast 2\.\d+ ms \(×[12]\.\d+\)\)"])  # sleeps: the wall clock


@pytest.mark.alone
def test_throughput_ratio_list_form_per_batch_and_calibration_reference(sleepy, tmp_path):
    sleepy.makefile(".toml", thresholds=textwrap.dedent('''
        [fast]
        min_throughput_ratio = [{ reference = "slow", min = 1.5, batch = 1 },
                                { reference = "slow", min = 1.5, batch = 4 }]
        max_latency_ratio = { reference = "calibration", max = 100000 }
    '''))
    result = sleepy.runpytest("--sketch-models=fast", f"--sketch-json={tmp_path}/r.json",
                              "--sketch-latency-budget=0.2", *FAST_RUN)
    if not judged_on_this_host(result):  # contention moves even these ratios: inconclusive, never a guess
        result.assert_outcomes(skipped=1)
        pytest.skip("a busy host: the ratios were not judged")
    result.assert_outcomes(passed=1)
    verdicts = _verdicts(tmp_path / "r.json")
    assert verdicts["min_throughput_ratio:slow@1"]["measured"] == pytest.approx(2.0, rel=0.1)
    assert verdicts["min_throughput_ratio:slow@4"]["measured"] == pytest.approx(2.0, rel=0.1)
    assert verdicts["max_latency_ratio:calibration@1"]["passed"] is True
    index = json.loads((tmp_path / "r.json").read_text())["benchmark_metadata"]["machine_speed_index"]
    assert index["calls_per_s"] > 0  # the calibration workload's own figure rides along in every report


@pytest.mark.parametrize("table, problem", [
    ('max_latency_ratio = { reference = "nope", max = 2 }', "unknown reference model(s) nope"),
    ('max_latency_ratio = { reference = "fast" }', "must be a table with reference and max"),
    ('min_throughput_ratio = { reference = "fast", min = -1 }', "'min_throughput_ratio.min' must be a positive"),
    ('max_latency_ratio = { reference = "fast", max = 2, batch = 0 }', "'max_latency_ratio.batch' must be a positive"),
])
def test_malformed_relative_limits_are_usage_errors(sleepy, table, problem):
    sleepy.makefile(".toml", thresholds=f"[slow]\n{table}\n")
    result = sleepy.runpytest("--sketch-models=slow", *FAST_RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str()


@pytest.mark.alone
def test_too_few_samples_for_p99_is_inconclusive_under_each_policy(sleepy, tmp_path):
    sleepy.makepyfile(test_latency="def test_latency(sketch_latency, sketch_thresholds):\n"
                                   "    sketch_thresholds.check_latency(sketch_latency(1))\n")
    sleepy.makefile(".toml", thresholds="[fast]\nmax_latency_ms = 100\nmax_p99_latency_ms = 0.001\n")
    args = ("--sketch-models=fast", "test_latency.py", f"--sketch-json={tmp_path}/r.json",
            "--sketch-latency-budget=0.05", *FAST_RUN)
    skipped = sleepy.runpytest(*args, "-rs")  # the default policy: neither passed nor failed
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.re_match_lines([r".*inconclusive: fast: not enough samples for p99 \(n=\d+, need ≥ 459\).*"])
    report = json.loads((tmp_path / "r.json").read_text())
    verdict = _verdicts(tmp_path / "r.json")["max_p99_latency_ms"]
    assert verdict["passed"] is None and verdict["measured"] is None and verdict["status"] == "inconclusive"
    assert report["model_results"]["fast"]["status"] == "inconclusive"
    assert report["benchmark_metadata"]["verdict_counts"]["inconclusive"] >= 1
    timing = report["model_results"]["fast"]["timing_results"]["1"]
    assert timing["p99_ci_ms"] is None and len(timing["p50_ci_ms"]) == 2  # too few for p99's interval, not p50's
    warned = sleepy.runpytest(*args, "--sketch-inconclusive=warn")  # a busy host: max_latency_ms warns too
    warned.assert_outcomes(passed=1, warnings=1 + (not judged_on_this_host(warned)))
    sleepy.runpytest(*args, "--sketch-inconclusive=fail").assert_outcomes(failed=1)
    assert _verdicts(tmp_path / "r.json")["max_p99_latency_ms"]["status"] == "inconclusive"  # whatever the policy


@pytest.mark.alone
def test_an_absolute_limit_inside_the_figures_interval_is_inconclusive(sleepy, tmp_path):
    """A jittery model whose p50 interval contains the limit: neither passed nor failed (no re-measuring)."""
    sleepy.makepyfile(test_latency="def test_latency(sketch_latency, sketch_thresholds):\n"
                                   "    sketch_thresholds.check_latency(sketch_latency(1))\n")
    sleepy.makefile(".toml", thresholds=textwrap.dedent('''
        [models.jitter]
        plugin = "conftest:Sleepy"
        path = "models/fast.npz"
        [jitter]
        max_latency_ms = 2.1
    '''))
    conftest = sleepy.path / "conftest.py"
    conftest.write_text(conftest.read_text().replace(
        "self.sleep_s, self.categories = float(data[\"sleep_s\"]),",
        "self.sleep_s, self.categories = [0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035],"))
    result = sleepy.runpytest("--sketch-models=jitter", "test_latency.py", f"--sketch-json={tmp_path}/r.json",
                              "--sketch-latency-budget=0.05", *FAST_RUN)
    result.assert_outcomes(skipped=1)
    verdict = _verdicts(tmp_path / "r.json")["max_latency_ms"]
    assert verdict["status"] == "inconclusive" and verdict["passed"] is None
    assert re.search(r"p50 latency 2\.\d+ ms \(95% CI 1\.\d+–[23]\.\d+\) ≈ max_latency_ms 2\.1", verdict["message"])


@pytest.mark.alone
def test_ab_gate_times_the_baseline_file_beside_the_candidate(sleepy):
    """--sketch-baseline-models: the same model's file from the baseline folder, timed in the same run."""
    sleepy.makepyfile(test_ab="def test_latency_vs_baseline(sketch_baseline_latency):\n"
                              "    sketch_baseline_latency(1)\n")
    sleepy.write("baseline", "slow", 0.002)  # the base branch's 'slow' was twice as fast
    sleepy.write("same", "fast", 0.002)
    regressed = sleepy.runpytest("--sketch-models=slow", "test_ab.py", f"--sketch-baseline-models={sleepy.path}/"
                                 "baseline", "--sketch-models-dir=models", "--sketch-latency-budget=0.2", *FAST_RUN)
    if not judged_on_this_host(regressed):  # sleeps are timed on the wall clock: a busy host cannot fail them
        regressed.assert_outcomes(skipped=1)
        return
    regressed.assert_outcomes(failed=1)
    regressed.stdout.re_match_lines([r".*slow p[15]0 ratio to its baseline file 1\.9\d*× \(99\.3% CI .*\) > max 1\.2"])
    unchanged = sleepy.runpytest("--sketch-models=fast", "test_ab.py", f"--sketch-baseline-models={sleepy.path}/same",
                                 "--sketch-latency-budget=0.2", *FAST_RUN)
    unchanged.assert_outcomes(passed=1)
    unchanged.stdout.fnmatch_lines(["*fast*p50 latency @1 (ms), same run*"])


def test_the_shipped_config_gates_every_shipped_model_relatively():
    from pytest_sketchbench.config import load_config

    config = load_config(REPO / "thresholds.toml")
    for model in ("cnn", "mobilenet", "onnx", "onnx-int8", "torch"):
        limits = config.limits_for(model, "cpu")
        assert {limit.key for limit in limits.ratios} == {"max_latency_ratio", "min_throughput_ratio"}, model
        assert not {"max_latency_ms", "max_p95_latency_ms", "min_throughput"} & set(limits.values), model


@pytest.mark.parametrize(("low", "high", "host_unfit", "clock", "status"), [
    (30.0, 31.0, [], "cpu", "failed"),                       # a fit host: the interval decides
    (24.0, 25.0, ["load 5.0 on 2 cores"], "cpu", "inconclusive"),  # past 19, within 19 × 1.35: could be the host
    (26.0, 27.0, ["load 5.0 on 2 cores"], "cpu", "failed"),  # past 19 × 1.35: no contention explains it
    (40.0, 41.0, ["load 5.0 on 2 cores"], "wall", "inconclusive"),  # the wall clock gets no allowance
    (12.0, 13.0, ["load 5.0 on 2 cores"], "cpu", "passed"),  # within 19 ÷ 1.35: no contention explains it
    (15.0, 16.0, ["load 5.0 on 2 cores"], "cpu", "inconclusive"),  # inside, but contention could have pulled it in
    (12.0, 13.0, ["load 5.0 on 2 cores"], "wall", "inconclusive"),  # the wall clock gets no allowance
])
def test_a_miss_on_an_unfit_host_fails_only_beyond_the_runtimes_contention_allowance(low, high, host_unfit, clock,
                                                                                       status):
    from pytest_sketchbench.checks import ThresholdChecker
    from pytest_sketchbench.config import Limits, RatioLimit
    from pytest_sketchbench.results import ModelResult

    limit = RatioLimit("max_latency_ratio", "calibration", 19.0)
    throughput = RatioLimit("min_throughput_ratio", "calibration", 1 / 19.0)  # the same evidence, read as throughput
    result = {"ratio": (low + high) / 2, "ci_low": low, "ci_high": high, "rounds": 200, "batch_size": 1,
              "confidence": 0.993, "looks": 1, "clock": clock, "host_unfit": host_unfit,
              "contention_allowance": 1.35, "model_p50_ms": 1.0, "reference_p50_ms": 0.07}
    for each in (limit, throughput):
        record = ModelResult("onnx")
        checker = ThresholdChecker(Limits("onnx", ratios=[each]), record, inconclusive="warn")
        with warnings.catch_warnings(), contextlib.suppress(pytest.fail.Exception):
            warnings.simplefilter("ignore")
            checker.check_ratio(each, result)
        assert record.verdicts[0].status == status, record.verdicts[0].message
