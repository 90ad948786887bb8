"""Honest GPU figures, tested where there is no GPU: a fake NVML (the real detection and per-process
memory code read it) and a plugin whose runtime says where it placed the model. A requested GPU that
the runtime did not use is an error; device memory is the runtime's allocator peak, else NVML's."""

from __future__ import annotations

import json
import textwrap

from conftest import REPO, assert_ran, run_options

FAKE_NVML = textwrap.dedent('''
    import os, sys, types

    class NVMLError(Exception):
        pass

    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.nvmlInit = lambda: None
    nvml.nvmlShutdown = lambda: None
    nvml.nvmlSystemGetDriverVersion = lambda: "999.1"
    nvml.nvmlDeviceGetCount = lambda: int(os.environ.get("FAKE_GPUS", "1"))
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetName = lambda handle: "NVIDIA Fake H200"
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=141 * 2**30)
    nvml.nvmlDeviceGetCudaComputeCapability = lambda handle: (9, 0)
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=0)
    nvml.nvmlDeviceGetTemperature = lambda handle, sensor: 30
    nvml.nvmlDeviceGetPowerUsage = lambda handle: 70000
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda handle: [
        types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=512 * 2**20)]
    sys.modules["pynvml"] = nvml
''')

PLUGINS = textwrap.dedent('''
    import os
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    class FakeCuda(CentroidModel):
        """Placed on 'cuda' by its (fake) runtime; reports an allocator peak when PEAK_MB is set."""
        def load(self):
            super().load()
            self.device = "cuda"

        def placement(self):
            return "cuda:0 (fake runtime)"

        def gpu_memory_peak_bytes(self):
            return int(float(os.environ["PEAK_MB"]) * 2**20) if os.environ.get("PEAK_MB") else None

    register_model("cpuonly", weights="centroid.npz")(CentroidModel)
    register_model("fallback", weights="centroid.npz", allow_cpu_fallback=True)(CentroidModel)
    register_model("oncuda", weights="centroid.npz")(FakeCuda)
''')
RUN = (*run_options(5, budget=0.05, batch_sizes="1"), "-rs")


def _project(centroid_project, nvml: bool = False):
    centroid_project.makeconftest((FAKE_NVML if nvml else "") + PLUGINS)
    for name in ("test_accuracy.py", "test_resources.py"):
        centroid_project.copy_example(str(REPO / "benchmarks" / name))
    return centroid_project


def test_a_gpu_run_whose_runtime_stays_on_the_cpu_is_an_error(centroid_project, tmp_path):
    project = _project(centroid_project)
    result = project.runpytest_subprocess(*RUN, "--sketch-models=cpuonly", "--sketch-device=gpu-large",
                                          "test_accuracy.py::test_accuracy", f"--sketch-json={tmp_path}/r.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*model 'cpuonly': the run asks for the GPU (gpu-large) but numpy placed the model "
                                 "on the CPU (cpu) — install the runtime's GPU build*or set allow_cpu_fallback = "
                                 "true in *models.cpuonly*"])
    record = json.loads((tmp_path / "r.json").read_text())["model_results"]["cpuonly"]
    assert record["status"] == "error"


def test_allow_cpu_fallback_runs_and_says_so(centroid_project):
    result = _project(centroid_project).runpytest_subprocess(*RUN, "--sketch-models=fallback",
                                                             "--sketch-device=gpu-large",
                                                             "test_accuracy.py::test_accuracy")
    assert_ran(result, measured=1)
    result.stdout.fnmatch_lines(["*note: fallback runs on the CPU on this GPU host (allow_cpu_fallback = true)*"])


def test_device_memory_is_the_runtime_peak_and_is_gated(centroid_project, monkeypatch, tmp_path):
    project = _project(centroid_project, nvml=True)
    project.makefile(".toml", thresholds="[oncuda]\nmax_gpu_memory_mb = 100\n")
    monkeypatch.setenv("PEAK_MB", "300")
    result = project.runpytest_subprocess(*RUN, "--sketch-models=oncuda", "-k", "gpu_memory",
                                          f"--sketch-json={tmp_path}/r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*oncuda peak GPU memory 300.0 MB (runtime allocator; NVML 512.0 MB for the "
                                 "process) on cuda:0 (fake runtime) > max_gpu_memory_mb 100*"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["benchmark_metadata"]["device_profile"] == "gpu-large"  # detected through (fake) NVML
    memory = report["model_results"]["oncuda"]["gpu_memory"]
    assert memory == {"runtime_peak_mb": 300.0, "nvml_process_mb": 512.0, "peak_mb": 300.0}


def test_without_an_allocator_figure_nvml_per_process_is_used(centroid_project, tmp_path):
    project = _project(centroid_project, nvml=True)
    project.makefile(".toml", thresholds="[oncuda]\nmax_gpu_memory_mb = 1000\n")
    result = project.runpytest_subprocess(*RUN, "--sketch-models=oncuda", "-k", "gpu_memory")
    result.assert_outcomes(passed=1)


def test_cpu_runs_skip_the_gpu_memory_test_with_the_reason(centroid_project):
    result = _project(centroid_project).runpytest_subprocess(*RUN, "--sketch-models=cpuonly", "-k", "gpu_memory")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs device profile gpu; this run's profile is 'cpu'*"])
