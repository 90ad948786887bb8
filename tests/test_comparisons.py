"""Comparing models honestly and seeing why one is slow, as a user sees it: parity gates, pairwise
significance, end-to-end and cold-start latency, the batch-size knee, profiling and API service levels."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO, assert_ran, run_options
from pytest_sketchbench.config import load_config
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.metrics import accuracy_report, parity
from pytest_sketchbench.models.onnx_model import kernel_totals
from pytest_sketchbench.profiling import flamegraph_svg, rank_operators
from pytest_sketchbench.report.analysis import comparison
from pytest_sketchbench.report.charts import drawing_png
from pytest_sketchbench.report.pairwise import latency_pair
from pytest_sketchbench.results import Disagreement, ModelResult
from pytest_sketchbench.stats import throughput_knee

# -- pure functions ------------------------------------------------------------------------------


def test_knee_is_the_batch_after_which_gains_drop_below_ten_percent():
    knee = throughput_knee({1: 1000.0, 32: 9000.0, 64: 9500.0, 128: 9600.0})
    assert knee["knee_batch"] == 32 and knee["reached"] is True
    assert knee["steps"][1]["gain"] == pytest.approx(9500 / 9000 - 1)
    still = throughput_knee({1: 100.0, 8: 400.0, 64: 1000.0})
    assert still["knee_batch"] == 64 and still["reached"] is False


@given(st.lists(st.floats(1.0, 1e6), min_size=2, max_size=8))
def test_knee_is_a_measured_batch_and_every_smaller_step_gained_enough(throughputs):
    batches = {2 ** i: t for i, t in enumerate(throughputs)}
    knee = throughput_knee(batches)
    assert knee["knee_batch"] in batches
    for step in knee["steps"]:
        if step["from"] < knee["knee_batch"]:
            assert step["gain"] >= 0.10


def test_parity_counts_agreement_and_lists_disagreements():
    labels = np.array([0, 1, 2, 3])
    result = parity(np.array([0, 1, 2, 0]), np.array([0, 1, 1, 0]), labels,
                    np.eye(4)[[0, 1, 2, 0]], np.eye(4)[[0, 1, 1, 0]])
    assert result.agreement == 0.75 and result.disagreements == 1
    assert result.disagreeing == [Disagreement(index=2, label=2, predicted=2, with_predicted=1)]
    assert result.max_probability_diff == 1.0
    assert parity(labels, labels, labels).max_probability_diff is None  # classes only: not applicable


def test_operator_ranking_from_an_onnx_runtime_trace():
    events = [{"cat": "Node", "name": "conv_1_kernel_time", "dur": 300, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "conv_2_kernel_time", "dur": 100, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "conv_2_fence_before", "dur": 999, "args": {"op_name": "Conv"}},
              {"cat": "Node", "name": "relu_kernel_time", "dur": 100, "args": {"op_name": "Relu"}},
              {"cat": "Session", "name": "model_run", "dur": 5000}]
    ranked = rank_operators(kernel_totals(events))
    assert [(r["operator"], r["calls"]) for r in ranked] == [("Conv", 2), ("Relu", 1)]
    assert ranked[0]["share"] == pytest.approx(0.8) and ranked[0]["total_ms"] == pytest.approx(0.4)


def test_flame_graph_is_svg_with_every_frame_named():
    class Frame:
        def __init__(self, function, time, children=()):
            self.function, self.time, self.children = function, time, list(children)
            self.file_path_short, self.line_no = "x.py", 1

    calls = [Frame("infer", 0.3, [Frame("run", 0.3)]), Frame("prepare", 0.2), Frame("infer", 0.5, [Frame("run", 0.4)])]
    svg = flamegraph_svg(Frame("root", 1.0, calls), "model")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "infer (x.py:1) — 800.00 ms, 80.0%" in svg and "run (x.py:1) — 700.00 ms, 70.0%" in svg  # merged
    assert svg.count("<title>infer") == 1 and "prepare (x.py:1) — 200.00 ms" in svg


def test_drawing_png_decodes_to_the_drawing(bundled):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(drawing_png(bundled.images[0], scale=2)))
    pixels = np.asarray(image)
    assert image.size == (56, 56) and image.mode == "L"
    assert np.array_equal(pixels[::2, ::2], 255 - bundled.images[0].reshape(28, 28))


def test_latency_statement_reads_as_slower_with_its_interval_either_way():
    records = {"a": ModelResult("a", relative_speed={("b", 1): {"ratio": 0.25, "ci_low": 0.2, "ci_high": 0.3125,
                                                                "rounds": 99}}),
               "b": ModelResult("b")}
    statement = latency_pair("a", "b", records)
    assert statement["significant"] and statement["text"].startswith("b 4× slower than a at batch 1 (95% CI 3.2–5,")
    assert latency_pair("b", "a", records)["ratio"] == pytest.approx(4.0)  # read from a's record, inverted


def test_best_accuracy_names_every_model_not_significantly_worse():
    labels = np.zeros(200, int)
    records = {name: ModelResult(name, predicted=predicted,
                                 accuracy=accuracy_report(None, np.array(predicted), labels, ["zero", "one"]))
               for name, predicted in (("a", [0] * 200), ("b", [0] * 198 + [1] * 2), ("c", [0] * 150 + [1] * 50))}
    summary = comparison(records, labels)
    assert summary["best_accuracy"] == "a = b (no significant difference)"
    texts = [pair["accuracy_text"] for pair in summary["pairs"]]
    assert "a and b: no significant accuracy difference (p = 0.5, Holm-adjusted over 3 pairs)" in texts
    assert any(t.startswith("a more accurate than c by 0.250 (p = ") for t in texts)


@pytest.mark.parametrize(("table", "problem"), [
    ('min_agreement = { with = "onnx" }', "'min_agreement' must be a table with 'with'"),
    ('min_agreement = { with = "onnx", min = 1.5 }', "must be a number in [0, 1]"),
    ('max_probability_diff = { with = "calibration", max = 0.1 }', "cannot follow the calibration workload"),
    ('min_agreement = { with = "nope", min = 0.9 }', "unknown reference model(s) nope"),
    ("max_overhead_share = 1.5", "'max_overhead_share' = 1.5 is out of range"),
])
def test_parity_and_share_limits_are_validated(tmp_path, table, problem):
    path = tmp_path / "thresholds.toml"
    path.write_text(f"[cnn]\n{table}\n")
    with pytest.raises(SketchBenchError) as error:
        load_config(path, known_models=["cnn", "onnx"])
    assert problem in str(error.value)


# -- as a user sees it (pytester, the centroid model) ---------------------------------------------
TWO_MODELS = textwrap.dedent('''
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    register_model("centroid", weights="centroid.npz")(CentroidModel)
    register_model("copy", weights="centroid.npz")(CentroidModel)
    register_model("worse", weights="centroid.npz", degrade=5)(CentroidModel)
''')
RUN = run_options(20, budget=0.05, batch_sizes="1,8")


@pytest.fixture
def project(centroid_project):
    centroid_project.makeconftest(TWO_MODELS)
    for name in ("test_accuracy", "test_latency", "test_speed", "test_profile", "test_api"):
        centroid_project.copy_example(str(REPO / "benchmarks" / f"{name}.py"))
    return centroid_project


def test_parity_gate_passes_an_exact_copy_and_fails_a_degraded_one_listing_drawings(project, bundled, tmp_path):
    project.makefile(".toml", thresholds=textwrap.dedent('''
        [copy]
        max_probability_diff = { with = "centroid", max = 1e-6 }
        min_agreement = { with = "centroid", min = 0.999 }
        [worse]
        min_agreement = { with = "centroid", min = 0.99 }
    '''))
    result = project.runpytest(*RUN, "--sketch-models=copy,worse", "-k", "parity", f"--sketch-json={tmp_path}/r.json",
                               f"--sketch-html={tmp_path}/r.html")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.re_match_lines([r".*worse agreement with centroid 0\.\d{4} \(95% CI .*; \d+ of 460 drawings differ\)"
                                  r" < min 0\.99 — first disagreements \(drawing label: worse vs centroid\): #0 \w+: "
                                  r"\w+ vs \w+; #5 .*"])
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["worse"]
    disagreeing = record["parity"]["centroid"]["disagreeing"]
    assert disagreeing and all(row["predicted"] == bundled.categories[0] for row in disagreeing)  # degrade → class 0
    assert record["parity"]["centroid"]["agreement"] < 0.99
    copy = json.loads((tmp_path / "r.json").read_text())["model_results"]["copy"]["parity"]["centroid"]
    assert copy["agreement"] == 1.0 and copy["max_probability_diff"] == 0.0
    page = (tmp_path / "r.html").read_text()
    assert "where worse and centroid disagree" in page and page.count("<figure class=drawing>") == 8


@pytest.mark.slow  # 6-9 s on the 2-core EPYC: out of the default subset (≤ 4 min)
def test_pairs_are_judged_by_significance_not_point_estimates(project, tmp_path):
    result = project.runpytest(*RUN, "--sketch-models=centroid,copy,worse", "-k", "accuracy or side_by_side",
                               f"--sketch-report-dir={tmp_path}/dir", f"--sketch-html={tmp_path}/r.html")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "comparison: best accuracy: centroid = copy (tie)*",
        "  centroid and copy: no significant accuracy difference (p = 1, Holm-adjusted over 3 pairs)*interleaved "
        "rounds)",
        "  centroid more accurate than worse by 0.*(p = *",
    ])
    csv = (tmp_path / "dir" / "category_by_model.csv").read_text().splitlines()
    assert csv[0] == "category,centroid,copy,worse" and len(csv) == 24
    page = (tmp_path / "r.html").read_text()
    assert "<table id='pairs'>" in page and "<table id='category-by-model'>" in page


PARTNERS = TWO_MODELS + textwrap.dedent('''
    import time

    class SingleDrawingTrouble(CentroidModel):
        """Scores the accuracy pass, then fails (or hangs) on single drawings: as a side-by-side partner."""
        options = CentroidModel.options + ("trouble",)

        def infer(self, prepared):
            if len(prepared) == 1 and self.config["trouble"] == "raise":
                raise RuntimeError("flaky partner")
            if len(prepared) == 1 and self.config["trouble"] == "hang":
                time.sleep(60)
            return super().infer(prepared)

    register_model("typo", weights="no-such-file.npz")(CentroidModel)
    register_model("flaky", weights="centroid.npz", trouble="raise")(SingleDrawingTrouble)
    register_model("hang", weights="centroid.npz", trouble="hang", timeout_s=2)(SingleDrawingTrouble)
''')


def test_a_failing_side_by_side_partner_is_recorded_on_the_partner_not_the_healthy_model(project, tmp_path):
    project.makeconftest(PARTNERS)
    started = __import__("time").monotonic()
    result = project.runpytest(*RUN, "--sketch-models=centroid,typo,flaky,hang", "-k", "side_by_side",
                               f"--sketch-json={tmp_path}/r.json")
    assert __import__("time").monotonic() - started < 50  # the hang is bounded by the partner's 2 s, not 600
    results = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert results["centroid"]["status"] == "passed" and results["centroid"]["errors"] == [], results["centroid"]
    assert "no-such-file.npz" in results["typo"]["errors"][0]
    assert "RuntimeError: flaky partner" in results["flaky"]["errors"][0]
    assert "did not finish within 2 s" in results["hang"]["errors"][0]
    for partner in ("typo", "flaky", "hang"):
        assert results[partner]["status"] == "error"
        result.stdout.fnmatch_lines([f"note: centroid and {partner} were not timed side by side: {partner} failed*"])


def test_end_to_end_cold_start_and_knee_are_reported_and_gated(project, tmp_path):
    project.makefile(".toml", thresholds=textwrap.dedent('''
        [centroid]
        max_overhead_share = 0.0001
        max_cold_start_ratio = 10000
    '''))
    result = project.runpytest(*RUN, "--sketch-models=centroid", "-k", "latency or cold", "-v",
                               f"--sketch-json={tmp_path}/r.json", f"--sketch-report-dir={tmp_path}/dir")
    assert_ran(result, passed=3, failed=1, measured=1)
    result.stdout.re_match_lines([
        r".*centroid time outside the runtime \d+\.\d% of end to end \(preprocess \d+\.\d%, postprocess \d+\.\d%\) "
        r"> max_overhead_share 0\.0001",
        r"    end to end p50 \d\.\d{3} ms at batch 1 \(preprocess \d+%, runtime \d+%, postprocess \d+%\); first call "
        r"after load \d+\.\d\d ms \(×\d+ the warm p50\)",
        r"    throughput (knee at batch [18]|still gains ≥ 10% per step up to batch 8).*",
    ])
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["centroid"]
    stages = record["end_to_end"]["stages"]
    assert sum(stage["share"] for stage in stages.values()) == pytest.approx(1.0)
    assert record["cold_start"]["first_call_ms"] > 0 and record["batch_sweep"]["knee_batch"] in (1, 8)
    assert "end to end p50" in (tmp_path / "dir" / "summary.md").read_text()


def test_profile_needs_a_report_dir(project):
    result = project.runpytest(*RUN, "--sketch-models=centroid", "--sketch-profile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sketch-profile: has nowhere to write the traces and flame graphs — add "
                                 "--sketch-report-dir DIR*"])


def test_profile_of_a_runtime_without_an_operator_profiler_still_draws_the_flame_graph(project, tmp_path):
    result = project.runpytest(*RUN, "--sketch-models=centroid", "--sketch-profile", "-k", "profile or latency",
                               f"--sketch-report-dir={tmp_path}/dir", f"--sketch-json={tmp_path}/r.json")
    assert result.ret == 0
    names = [line.split("::")[1].split(" ")[0] for line in result.stdout.lines if "::" in line]
    profile = json.loads((tmp_path / "r.json").read_text())["model_results"]["centroid"]["profile"]
    assert (tmp_path / "dir" / "centroid" / "flamegraph.svg").read_text().startswith("<svg")
    assert (tmp_path / "dir" / "centroid" / "pyinstrument.html").exists()
    assert "numpy has no operator profiler here" in profile["notes"][0] and "trace" not in profile
    assert not names or names[-1].startswith("test_profile")  # profiling runs after every timing


# -- API models gated like any other (the real google-genai client, a fake server on 127.0.0.1) -----
def test_gemini_service_levels_are_gated_and_reported(pytester, bundled, monkeypatch, tmp_path):
    from fake_gemini import FakeGemini, answers_for

    from pytest_sketchbench.data import subsample

    monkeypatch.setenv("GEMINI_API_KEY", "fake-gemini-key-0123456789abcdefghij")
    with FakeGemini(answers_for(subsample(bundled, 2)), behaviour="outside") as fake:
        pytester.makefile(".toml", thresholds=textwrap.dedent(f'''
            [models.gemini]
            base_url = "{fake.base_url}"
            requests_per_minute = 60000
            [gemini]
            min_success_rate = 0.95
            max_invalid_rate = 0.05
            max_cost_per_1000 = 10.0
        '''))
        pytester.copy_example(str(REPO / "benchmarks" / "test_api.py"))
        result = pytester.runpytest(*run_options(2), "--sketch-models=gemini",
                                    f"--sketch-report-dir={tmp_path}/dir", f"--sketch-html={tmp_path}/r.html")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gemini success rate 0.000 < min_success_rate 0.95 of 46 requests (0 failed)*"])
    summary = (tmp_path / "dir" / "summary.md").read_text()
    assert "API: success 0.000, invalid answers 1.000" in summary and "per 1,000 drawings" in summary
    assert "gemini invalid-answer rate 1.000 > max_invalid_rate 0.05" in summary
    assert "API: success 0.000" in (tmp_path / "r.html").read_text()


# -- the shipped models in their real runtimes (slow) ---------------------------------------------
def _benchmarks(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args, f"--sketch-json={tmp_path}/r.json",
                           f"--sketch-html={tmp_path}/r.html", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_perturbed_int8_copy_passes_accuracy_but_fails_parity_with_cnn(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("cnn.h5", "cnn.classes.json"):
        shutil.copy(REPO / "models" / name, models / name)
    script = REPO / "scripts" / "make_perturbed_model.py"
    subprocess.run([sys.executable, str(script), str(REPO / "models" / "cnn-int8.onnx"), str(models / "cnn-int8.onnx"),
                    "--noise", "0.05"], check=True, capture_output=True)
    result = _benchmarks(tmp_path, "benchmarks/test_accuracy.py", "--sketch-models=onnx-int8",
                         f"--sketch-models-dir={models}", "-k", "test_accuracy or parity")
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(r"onnx-int8 agreement with cnn 0\.9[0-8]\d\d \(95% CI [\d.–]+; \d+ of 6,576 drawings differ\) < "
                     r"min 0\.99 — first disagreements \(drawing label: onnx-int8 vs cnn\): #\d+ \w+: \w+ vs \w+",
                     result.stdout), result.stdout[-3000:]
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["onnx-int8"]
    verdicts = {v["check"]: v["passed"] for v in record["threshold_verdicts"]}
    assert verdicts["min_accuracy"] is True and verdicts["min_agreement:cnn"] is False  # accuracy alone misses it
    assert len(record["parity"]["cnn"]["disagreeing"]) == 50 and record["parity"]["cnn"]["disagreements"] > 0.01 * 6576


@pytest.mark.slow
def test_profiles_of_onnx_and_torch_are_chrome_traces_and_flame_graphs(tmp_path):
    result = _benchmarks(tmp_path, "benchmarks/test_profile.py", "--sketch-models=onnx,torch", "--sketch-profile",
                         f"--sketch-report-dir={tmp_path}/dir", "--sketch-samples-per-category=20")
    assert result.returncode == 0, result.stdout[-3000:]
    page = (tmp_path / "r.html").read_text()
    profiles = {m: r["profile"] for m, r in json.loads((tmp_path / "r.json").read_text())["model_results"].items()}
    for model, profiler in (("onnx", "ONNX Runtime profiler"), ("torch", "torch.profiler")):
        trace = json.loads((tmp_path / "dir" / model / "trace.json").read_text())
        assert len(trace["traceEvents"]) > 50 and profiles[model]["runtime_profiler"] == profiler
        assert (tmp_path / "dir" / model / "flamegraph.svg").read_text().startswith("<svg")
        top = profiles[model]["top_operators"][0]
        assert f"<tr><td>{top['operator']}</td>" in page and 0 < top["share"] <= 1
    assert profiles["onnx"]["top_operators"][0]["operator"] in {"Conv", "FusedConv", "MatMul", "Gemm"}
