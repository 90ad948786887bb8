"""Load shapes: a step or ramp schedule of LoadGen Server runs, and the knee where the model stops keeping up."""

from __future__ import annotations

import json

import pytest

from conftest import REPO, judged_on_this_host, run_options
from pytest_sketchbench.config import load_config
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.load_shapes import knee, knee_verdict, step_rates, step_table


def _step(rate, achieved=None, p99=2.0, errors=0.0):
    return {"target_qps": rate, "achieved_qps": rate if achieved is None else achieved, "p50_ms": 1.0,
            "p99_ms": p99, "error_rate": errors, "valid": True}


@pytest.mark.parametrize(("steps", "found", "why"), [
    ([_step(50), _step(100), _step(200, p99=7.0)], 100, "p99 7.00 ms > 3 × 2.00 ms"),
    ([_step(50), _step(100, achieved=80)], 50, "completed 80.0 of 100.0 QPS scheduled"),
    ([_step(50), _step(100), _step(200, errors=0.05)], 100, "5.0% of requests failed"),
    ([_step(50, achieved=10), _step(100)], None, "completed 10.0 of 50.0 QPS scheduled"),
    ([_step(50), _step(100)], 100, "no step saturated: the knee is above the schedule"),
])
def test_the_knee_is_the_last_step_before_the_first_that_saturates(steps, found, why):
    shape = {"steps": steps, **knee(steps)}
    assert shape["knee_qps"] == found and shape["why"] == why
    table = step_table(shape)
    assert len(table) == len(steps) + 1 and (found is None or any("← knee" in line for line in table))
    passed = knee_verdict("m", "m steps", shape, 100)[3]
    assert passed is (found is not None and found >= 100)


def test_a_ramp_is_geometric_and_steps_are_sorted():
    assert step_rates({"ramp_qps": {"from": 50, "to": 800, "steps": 5}}) == [50.0, 100.0, 200.0, 400.0, 800.0]
    assert step_rates({"load_steps_qps": [400, 50, 100]}) == [50.0, 100.0, 400.0]


@pytest.mark.parametrize(("table", "problem"), [
    ("load_steps_qps = [50]", "'load_steps_qps' must list at least two positive rates"),
    ("ramp_qps = { from = 100, to = 50, steps = 4 }", "'ramp_qps' must be { from = <rate>"),
    ("load_steps_qps = [50, 100]\nramp_qps = { from = 50, to = 100, steps = 2 }", "both load_steps_qps and ramp_qps"),
])
def test_a_bad_schedule_is_a_one_line_config_error(tmp_path, table, problem):
    (tmp_path / "t.toml").write_text(f"[m.loadgen]\n{table}\n")
    with pytest.raises(SketchBenchError, match=problem.replace("[", r"\[").replace("{", r"\{")):
        load_config(tmp_path / "t.toml")


@pytest.mark.alone
def test_steps_on_a_local_model_find_a_knee_and_print_the_table(centroid_project, tmp_path):
    centroid_project.makeconftest("""
        from centroid_plugin import CentroidModel
        from pytest_sketchbench import register_model

        register_model("centroid", weights="centroid.npz", sleep_s=0.004)(CentroidModel)
    """)
    centroid_project.makefile(".toml", thresholds="""
        [centroid.loadgen]
        load_steps_qps = [50, 100, 400]
        step_duration_ms = 600
        server_max_p99_ms = 1000
        min_knee_qps = 50
        accuracy = false
    """)
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_loadgen.py"))
    result = centroid_project.runpytest(*run_options(5), "--sketch-models=centroid", "-k", "Steps",
                                        f"--sketch-json={tmp_path}/r.json")
    # one call takes ≥ 4 ms: 400 QPS cannot be kept up with on one thread; the knee's limit is absolute (QPS), so a
    # busy host leaves it inconclusive, never passed
    result.assert_outcomes(**({"passed": 1} if judged_on_this_host(result) else {"skipped": 1}))
    result.stdout.fnmatch_lines(["*LoadGen Steps 50→400 QPS (3 steps): knee at * QPS (*)*",
                                 "*target QPS  scheduled  achieved   p50 ms   p99 ms   errors  LoadGen*",
                                 "*400 * ← saturated*"])
    shape = json.loads((tmp_path / "r.json").read_text())["model_results"]["centroid"]["loadgen"]["Steps"]["steps"]
    assert shape["saturated_at"] == 400 and shape["knee_qps"] in (50, 100)
