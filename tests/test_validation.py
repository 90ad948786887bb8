"""Options and config validated by meaning: a mistyped value is a usage error, never a silently
disabled gate or a nonsense measurement (from the fault catalogue of issue #13)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BUNDLED, REPO, run_options
from pytest_sketchbench.baseline import settings_from
from pytest_sketchbench.errors import SketchBenchError


def test_an_empty_model_list_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = pytester.runpytest("--sketch-models=,", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sketch-models: ',' names no model — name one or more of cnn, *"])


@pytest.mark.parametrize("option", ["--sketch-latency-budget=nan", "--sketch-eval-batch-size=0",
                                    "--sketch-threads=-1", "--sketch-samples-per-category=-5"])
def test_out_of_range_numbers_are_usage_errors(pytester, option):
    pytester.makepyfile("def test_x(sketch_model): pass")
    result = pytester.runpytest(option, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert option.split("=")[0] in result.stderr.str()


def test_more_threads_than_cores_are_clamped_and_said(centroid_project):

    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.makepyfile("def test_x(sketch_model): pass")
    result = centroid_project.runpytest_subprocess(  # pinning and thread variables must not leak into this process
        *run_options(None), "--sketch-models=centroid", "--sketch-threads=999")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["sketchbench: threads: * intra-op per runtime*",
                                 "sketchbench: warning: 999 threads asked for, but only * cores are usable — using *"])


@pytest.mark.parametrize("table, problem", [
    ({"gate": "accuracy"}, "'gate' must be a list drawn from accuracy, latency, memory, size"),
    ({"gate": ["acuracy"]}, "'gate' must be a list"),
    ({"alpha": "0.01"}, "'alpha' must be a finite number"),
    ({"memory_margin": float("nan")}, "'memory_margin' must be a finite number"),
    ({"compare_across_profiles": 1}, "'compare_across_profiles' must be true or false"),
    ({"models": {"cnn": {"latency_max_ratio": True}}}, "[baseline.models.cnn]: 'latency_max_ratio'"),
])
def test_baseline_settings_are_typed(table, problem):
    with pytest.raises(SketchBenchError) as error:
        settings_from(table, "thresholds.toml")
    assert problem in str(error.value)


def test_the_shipped_baseline_settings_pass():
    import tomllib

    from conftest import REPO

    settings = settings_from(tomllib.loads((REPO / "thresholds.toml").read_text())["baseline"], "thresholds.toml")
    assert settings["gate"] == ["accuracy", "latency", "memory", "size"]


# -- input contracts: ink polarity and value range, and the near-chance diagnosis ------------------
def test_contracts_turn_the_natural_input_into_the_stated_one():
    from pytest_sketchbench.preprocess import apply_contract

    batch = np.array([[0.0, 0.25, 1.0]], dtype=np.float32)
    assert apply_contract(batch, "grayscale") is batch  # nothing stated: no copy, no cost
    np.testing.assert_allclose(apply_contract(batch, "grayscale", ink="black-on-white"), [[1.0, 0.75, 0.0]])
    np.testing.assert_allclose(apply_contract(batch, "rgb", ink="black-on-white"), batch)  # rgb is already so
    np.testing.assert_allclose(apply_contract(batch, "grayscale", value_range="0-255"), [[0.0, 63.75, 255.0]])
    np.testing.assert_allclose(apply_contract(batch, "grayscale", "black-on-white", "-1-1"), [[1.0, 0.5, -1.0]])


@pytest.mark.parametrize("option, problem", [
    ({"ink": "white"}, "ink = 'white'"), ({"value_range": "0-256"}, "value_range = '0-256'"),
    ({"threads": 0}, "threads = 0 is not a whole number >= 1"), ({"threads": "4"}, "threads = '4' is not a whole"),
    ({"threads": True}, "threads = True"), ({"strict_categories": "false"}, "strict_categories = 'false' is not true"),
    ({"spinning": 0}, "spinning = 0 is not true or false"), ({"device": "cuda:1"}, "device = 'cuda:1'"),
    ({"timeout_s": float("nan")}, "timeout_s = nan is not a positive number"),
])
def test_contract_options_are_validated(option, problem):
    from pytest_sketchbench.models.onnx_model import OnnxModel

    with pytest.raises(SketchBenchError, match=problem):
        OnnxModel("m", {"path": "m.onnx", **option})


def test_a_model_fed_the_wrong_polarity_fails_near_chance_naming_the_fix(centroid_project, tmp_path):
    centroid_project.makeconftest("""
        from centroid_plugin import CentroidModel
        from pytest_sketchbench import register_model

        register_model("inverted", weights="centroid.npz", ink="black-on-white")(CentroidModel)
    """)
    centroid_project.makefile(".toml", thresholds="[inverted]\nmin_accuracy = 0.3\n")
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest(*run_options(40), "--sketch-models=inverted", "-k", "test_accuracy[",
                                        f"--sketch-json={tmp_path}/r.json")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([r".*inverted accuracy 0\.0\d\d .* < min_accuracy 0\.300 on 920 drawings ≈ chance "
                                  r"\(1/23\): with ink = \"white-on-black\" it scores 0\.[3-6]\d on 207 drawings — "
                                  r"set ink in \[models\.inverted\]"])
    diagnosis = json.loads((tmp_path / "r.json").read_text())["model_results"]["inverted"]["input_diagnosis"]
    assert len(diagnosis["tried"]) == 6 and diagnosis["fix"] == {"ink": "white-on-black"}


def test_a_model_without_any_category_list_is_a_usage_error_saying_how_to_give_one(centroid_project, tmp_path):
    """By position would be a guess: a file without a class list, and a plugin that sets none, are refused."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((784, 23), np.float32)
    graph = helper.make_graph([helper.make_node("Flatten", ["image"], ["flat"]),
                               helper.make_node("MatMul", ["flat", "w"], ["scores"])], "bare",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28, 1])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 23])],
                              [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, centroid_project.path / "bare.onnx")
    centroid_project.makeconftest("""
        from centroid_plugin import CentroidModel
        from pytest_sketchbench import register_model

        @register_model("anonymous", weights="centroid.npz")
        class Anonymous(CentroidModel):
            def load(self):
                super().load()
                self.categories = None
    """)
    centroid_project.makefile(".toml", thresholds='[models.bare]\npath = "bare.onnx"\n')
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest(*run_options(5), "--sketch-models=bare,anonymous", "-k", "test_accuracy[")
    assert result.ret == 1
    text = result.stdout.str()
    assert (f"model 'bare': no category list ({centroid_project.path / 'bare.onnx'} has none and no bare.classes.json "
            f"lies beside it); the dataset {BUNDLED} has 23 — give the model's own, in its order: categories = "
            '"class_names.txt" (one name per line, or a .json list) in [models.bare]') in text
    assert "model 'anonymous': no category list (its plugin sets none in load())" in text
