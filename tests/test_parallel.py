"""Hardware detection, device profiles, and honest ``pytest -n`` runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, assert_ran, run_options
from pytest_sketchbench import hardware
from pytest_sketchbench.parallel import assign_cores, assign_gpu
from pytest_sketchbench.plugin import profile_matches


@pytest.mark.parametrize("memory, profile", [(4.0, "gpu-small"), (7.9, "gpu-small"), (15.0, "gpu"),
                                             (23.9, "gpu"), (40.0, "gpu-large"), (80.0, "gpu-large")])
def test_profile_classification(memory, profile):
    assert hardware.classify([{"memory_gib": memory}]) == profile
    assert hardware.classify([]) == "cpu"


def test_profiles_from_config():
    profiles = hardware.profiles_from_config({"laptop": {"max_gpu_memory_gib": 6}, "t4": {"min_gpu_memory_gib": 6}})
    assert hardware.classify([{"memory_gib": 4}], profiles) == "laptop"
    assert hardware.classify([{"memory_gib": 16}], profiles) == "t4"


def test_profile_marks():
    assert profile_matches("gpu-large", ["gpu"]) and profile_matches("cpu", ["cpu"])
    assert not profile_matches("cpu", ["gpu"]) and not profile_matches("gpu-small", ["gpu-large"])


@pytest.mark.parametrize("index, outer, count, expected", [
    (0, None, 4, "0"), (3, None, 4, "3"), (5, None, 4, "1"),
    (0, "3,5", 8, "3"), (1, "3,5", 8, "5"), (2, "3,5", 8, "3"),  # respects an outer CUDA_VISIBLE_DEVICES
    (0, "", 2, None), (0, None, 0, None),
])
def test_gpu_assignment(index, outer, count, expected):
    assert assign_gpu(index, outer, count) == expected


def test_a_replacement_worker_takes_the_cores_its_predecessor_left():
    """xdist names gw0's replacement gw2: by name it got the block past the last core (none: OMP_NUM_THREADS=0)."""
    from types import SimpleNamespace

    from pytest_sketchbench.parallel import ResultCollector

    collector = ResultCollector({}, [])
    nodes = {name: SimpleNamespace(gateway=SimpleNamespace(id=name), workerinput={"workercount": 2})
             for name in ("gw0", "gw1", "gw2")}
    collector.pytest_configure_node(nodes["gw0"])
    collector.pytest_configure_node(nodes["gw1"])
    collector.pytest_testnodedown(nodes["gw0"], "crashed")
    collector.pytest_configure_node(nodes["gw2"])
    assert [nodes[name].workerinput["sketchbench_slot"] for name in ("gw0", "gw1", "gw2")] == [0, 1, 0]


def test_core_assignment_is_disjoint_or_says_shared():
    blocks = [assign_cores(i, 2, [0, 1, 2, 3]) for i in range(2)]
    assert blocks == [([0, 1], False), ([2, 3], False)]
    assert assign_cores(2, 3, [0, 1]) == ([0], True)


def test_detection_without_gpu_is_absent_not_a_crash_and_imports_no_runtime():
    code = ("import sys, json; from pytest_sketchbench import hardware; d = hardware.detect(); "
            "print(json.dumps([d['gpus'], d['gpu_note'], d['cpu']['logical_cores'] > 0, "
            "[m for m in ('tensorflow', 'torch', 'onnxruntime') if m in sys.modules]]))")
    gpus, note, has_cores, imported = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert has_cores and imported == []
    if not gpus:
        assert note  # e.g. "NVML unavailable (NVMLError_LibraryNotFound)"


CONFTEST = textwrap.dedent('''
    import os
    import threading
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    EARLY = threading.Thread(target=threading.Event().wait, daemon=True)  # a pool started by an import, unpinned
    EARLY.start()

    class Counted(CentroidModel):
        def load(self):
            with open("loads.txt", "a") as handle:
                handle.write(f"{self.name} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")
            with open("affinity.txt", "a") as handle:  # this thread's cores, and the early thread's
                handle.write(f"{self.name} {sorted(os.sched_getaffinity(0))} "
                             f"{sorted(os.sched_getaffinity(EARLY.native_id))}\\n")
            super().load()

    class Crashing(Counted):
        single_calls = 0

        def infer(self, prepared):  # crashes while timed: the first single drawing is the cold-start call
            self.single_calls += len(prepared) == 1
            if os.environ.get("CRASH") == "exit" and self.single_calls > 1:
                os._exit(3)
            if os.environ.get("CRASH") == "segfault" and self.single_calls > 1:
                import ctypes
                ctypes.string_at(0)  # a real segfault: reads address 0
            return super().infer(prepared)

    register_model("alpha", weights="centroid.npz")(Counted)
    register_model("beta", weights="centroid.npz")(Crashing)
''')


@pytest.fixture
def two_models(centroid_project):
    centroid_project.makeconftest(CONFTEST)
    for name in ("test_accuracy.py", "test_latency.py"):
        centroid_project.copy_example(str(REPO / "benchmarks" / name))
    return centroid_project


def _run_parallel(project, tmp_path, *extra):
    return project.runpytest_subprocess(
        "-n", "2", "--max-worker-restart=0", *run_options(10, budget=0.1, batch_sizes="1,8"),
        "--sketch-models=alpha,beta",
        f"--sketch-json={tmp_path}/r.json", *extra, timeout=120)


@pytest.mark.slow
@pytest.mark.alone
def test_parallel_run_groups_pins_measures_and_merges(two_models, tmp_path):
    result = _run_parallel(two_models, tmp_path)
    assert_ran(result, passed=4, skipped=2, warnings=0, measured=14)  # the parity tests skip: no parity limit
    result.stdout.fnmatch_lines(["*sketchbench: parallel: 2 workers, 1 dedicated core(s) each; tests grouped by*"])
    loads = (two_models.path / "loads.txt").read_text().split()
    assert sorted(loads[::2]) == ["alpha", "beta"]  # each model loaded exactly once
    report = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert set(report) == {"alpha", "beta"}
    placements = [report[m]["parallel"] for m in ("alpha", "beta")]
    assert placements[0]["worker"] != placements[1]["worker"]
    assert not set(placements[0]["cores"]) & set(placements[1]["cores"]) and not placements[0]["shared_cores"]
    affinity = dict(line.split(" ", 1) for line in (two_models.path / "affinity.txt").read_text().splitlines())
    for model, placement in zip(("alpha", "beta"), placements, strict=True):  # threads from before the pinning too
        assert affinity[model] == f"{placement['cores']} {placement['cores']}", affinity
    for model in ("alpha", "beta"):
        assert report[model]["accuracy_results"]["accuracy"] > 0.2
        timing = report[model]["timing_results"]["1"]
        assert timing["timer"] == "sketchbench" and timing["rounds"] >= 20 and timing["median_ms"] > 0
        assert report[model]["end_to_end"]["median_ms"] > 0 and report[model]["cold_start"]["first_call_ms"] > 0


@pytest.mark.slow
def test_crashed_worker_loses_only_its_own_model(two_models, tmp_path, monkeypatch):
    monkeypatch.setenv("CRASH", "exit")
    result = _run_parallel(two_models, tmp_path, f"--sketch-html={tmp_path}/r.html")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1 and outcomes.get("passed", 0) + outcomes.get("measured", 0) >= 5, outcomes
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model_results"]["alpha"]["timing_results"]["1"]["rounds"] >= 20
    assert report["model_results"]["beta"]["accuracy_results"]["accuracy"] > 0.2  # reported before the crash
    assert any("crashed" in note for note in report["benchmark_metadata"]["notes"])
    assert (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_a_crashing_model_costs_one_model_not_the_run_and_is_not_rerun(two_models, tmp_path, monkeypatch):
    """With xdist's default restarts, a model whose runtime kills its worker used to be re-run on each new
    worker until 'maximum crashed workers reached' (INTERNALERROR, the model absent from the report)."""
    monkeypatch.setenv("CRASH", "segfault")
    result = two_models.runpytest_subprocess(
        "-n", "2", *run_options(10, budget=0.1, batch_sizes="1,8"), "--sketch-models=alpha,beta",
        f"--sketch-json={tmp_path}/r.json", timeout=180)
    assert result.ret == 1, result.stdout.str()[-3000:]  # a failure, not INTERNALERROR (3)
    assert "maximum crashed workers reached" not in result.stdout.str()
    assert "Invalid value for environment variable OMP_NUM_THREADS" not in result.stderr.str()  # the replacement
    assert result.stdout.str().count("crashed while running") == 1  # once: the rest of beta is not re-run
    report = json.loads((tmp_path / "r.json").read_text())["model_results"]
    assert report["alpha"]["status"] == "measured"  # no limits: measured, not gated
    assert report["beta"]["status"] == "error"
    assert any("its pytest worker died while running test_single_drawing_latency[beta] "
               "(killed by SIGSEGV: a crash in the runtime)"
               in error for error in report["beta"]["errors"]), report["beta"]["errors"]


@pytest.mark.parametrize(("test_id", "expected"), [
    ("benchmarks/test_accuracy.py::test_accuracy[cnn]", True),
    ("benchmarks/test_speed.py::test_latency[cnn-bs1]", True),
    ("benchmarks/test_speed.py::test_latency[cnn-bs1]@cnn", True),  # xdist_group's suffix
    ("benchmarks/test_speed.py::test_latency[bs1-mobile-net]", True),
    ("benchmarks/test_speed.py::test_latency[cnnx-bs1]", False),
    ("tests/test_plugin.py::test_config_errors[[cnn]\\nmin_acuracy = 0.9-thresholds.toml [cnn]: unknown]", False),
    ("tests/test_plugin.py::test_plain", False),
])
def test_the_controller_tells_a_sketch_test_by_a_parameter_that_is_a_models_name(test_id, expected):
    """Under -n the controller sees only test ids: the suite's own 'test_config_errors[[cnn]…' printed the
    sketchbench header over a run with no sketch test in it."""
    from pytest_sketchbench.options import parametrized_with_a_model

    assert parametrized_with_a_model(test_id, ["cnn", "mobile-net"]) is expected


def test_serial_pinning_pins_every_thread_and_gives_each_its_cores_back():
    """--sketch-threads without -n: a pool an import started before the run must not keep running on the other
    cores (it used to: only the calling thread was pinned), and the run's end gives every thread its cores back."""
    import os
    import threading
    from types import SimpleNamespace

    from pytest_sketchbench.parallel import pin_serial

    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("one core: nothing to pin to")
    stop = threading.Event()
    early = threading.Thread(target=stop.wait, daemon=True)
    early.start()
    cleanups: list = []
    try:
        placement = pin_serial(1, SimpleNamespace(add_cleanup=cleanups.append))
        pinned = {min(before)}
        assert placement["cores"] == sorted(pinned)
        assert os.sched_getaffinity(0) == pinned and os.sched_getaffinity(early.native_id) == pinned
    finally:
        for cleanup in cleanups:
            cleanup()
        stop.set()
    assert os.sched_getaffinity(0) == before and os.sched_getaffinity(early.native_id) == before
