"""Where the benchmark runs: CPU, NVIDIA GPUs, the environment, and what ran (commit, library versions).

Everything here degrades to "absent": a missing driver, library or runtime is a fact to
report, never a crash — and no runtime is imported unless it is already imported or was
asked for (importing TensorFlow to look for GPUs costs seconds).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

GIB = 1024**3

# name → (lower bound GiB, upper bound GiB) of the largest GPU's memory; "cpu" when no GPU.
DEFAULT_PROFILES = {
    "gpu-small": (0.0, 8.0),
    "gpu": (8.0, 24.0),
    "gpu-large": (24.0, float("inf")),
}


# The instruction sets a measured figure can depend on: int8 kernels differ in what they compute (VPMADDUBSW on
# AVX2/AVX-512F saturates pairs of products into int16; VNNI's VPDPBUSD does not), and float kernels in speed.
INSTRUCTION_SETS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                    "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve")


def instruction_sets(cpuinfo: str) -> list[str]:
    """The INSTRUCTION_SETS a ``/proc/cpuinfo`` text lists (its first ``flags``/``Features`` line)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return [name for name in INSTRUCTION_SETS if name in present]
    return []


def int8_dot_product(sets: list[str]) -> str | None:
    """How this CPU's int8 kernels add products: the fact an int8 model's accuracy can depend on."""
    if "avx512_vnni" in sets or "avx_vnni" in sets or "amx_int8" in sets:
        return "VNNI (exact int32 sums)"
    if "avx2" in sets or "avx512bw" in sets:
        return "no VNNI: VPMADDUBSW saturates 8-bit weight pairs in int16 (7-bit weights are exact)"
    return None


def cpu_info() -> dict:
    frequency = None
    try:
        freq = psutil.cpu_freq()
        frequency = round(freq.max or freq.current, 1) if freq else None
    except (OSError, NotImplementedError, FileNotFoundError):
        pass
    model = platform.processor() or platform.machine()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    sets = instruction_sets(cpuinfo)
    try:
        affinity = sorted(psutil.Process().cpu_affinity())
    except (AttributeError, OSError):
        affinity = list(range(psutil.cpu_count() or 1))
    return {
        "model": model,
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "usable_cores": len(affinity),
        "frequency_mhz": frequency,
        "memory_gib": round(psutil.virtual_memory().total / GIB, 2),
        "instruction_sets": sets,
        "int8_dot_product": int8_dot_product(sets),
    }


def nvidia_gpus() -> tuple[list[dict], str | None]:
    """GPUs through NVML (nvidia-ml-py); ([], reason) when there are none or NVML is missing."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, …
        return [], f"NVML unavailable ({exc.__class__.__name__})"
    gpus = []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpu = {"index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
                   "memory_gib": round(memory.total / GIB, 2), "driver": driver}
            for key, query in (
                ("compute_capability", lambda h: ".".join(map(str, pynvml.nvmlDeviceGetCudaComputeCapability(h)))),
                ("utilization_pct", lambda h: pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                ("temperature_c", lambda h: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),
                ("power_w", lambda h: round(pynvml.nvmlDeviceGetPowerUsage(h) / 1000, 1)),
            ):
                try:
                    gpu[key] = query(handle)
                except Exception:  # not every GPU reports every sensor
                    gpu[key] = None
            gpus.append(gpu)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return gpus, None


def process_gpu_memory_mb(pid: int | None = None) -> float | None:
    """Device memory NVML attributes to this process on every GPU it uses (MB); None without NVML or where
    the driver does not report per-process figures."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver
        return None
    pid = os.getpid() if pid is None else pid
    try:
        used = [process.usedGpuMemory
                for index in range(pynvml.nvmlDeviceGetCount())
                for process in pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(index))
                if process.pid == pid and process.usedGpuMemory is not None]
    except Exception:  # e.g. NVMLError_NotSupported in some containers
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return sum(used) / (1024 * 1024) if used else None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def environment() -> str:
    env = os.environ
    if "COLAB_GPU" in env or "COLAB_RELEASE_TAG" in env:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in env:
        return "kaggle"
    if "SM_CURRENT_HOST" in env or "SAGEMAKER_REGION" in env:
        return "sagemaker"
    if env.get("GITHUB_ACTIONS") == "true":
        return "github-actions"
    if env.get("CI"):
        return "ci"
    if Path("/.dockerenv").exists() or "container" in env or _in_cgroup_container():
        return "container"
    return "local"


def _in_cgroup_container() -> bool:
    try:
        text = Path("/proc/1/cgroup").read_text()
    except OSError:
        return False
    return any(word in text for word in ("docker", "kubepods", "containerd", "lxc"))


def classify(gpus: list[dict], profiles: dict | None = None) -> str:
    """The device profile of a machine: 'cpu' without GPUs, else by the largest GPU's memory."""
    if not gpus:
        return "cpu"
    memory = max(g["memory_gib"] for g in gpus)
    for name, (low, high) in (profiles or DEFAULT_PROFILES).items():
        if low <= memory < high:
            return name
    return "gpu"


@lru_cache(maxsize=1)
def detect() -> dict:
    """The hardware summary that goes into the header and every result record."""
    gpus, reason = nvidia_gpus()
    return {
        "cpu": cpu_info(),
        "gpus": gpus,
        "gpu_note": reason,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "environment": environment(),
    }


def profiles_from_config(table: dict) -> dict:
    """``[profiles.<name>] min_gpu_memory_gib / max_gpu_memory_gib`` → classification bounds."""
    if not table:
        return DEFAULT_PROFILES
    return {name: (float(spec.get("min_gpu_memory_gib", 0)), float(spec.get("max_gpu_memory_gib", float("inf"))))
            for name, spec in table.items()}


def summary_line(hardware: dict, profile: str) -> str:
    cpu = hardware["cpu"]
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in hardware["gpus"]) or "none"
    sets = cpu.get("instruction_sets") or []
    widest = next((name.upper().replace("_", "-") for name in ("avx512_vnni", "avx512f", "avx_vnni", "avx2", "asimd")
                   if name in sets), None)
    return (f"profile {profile}; CPU {cpu['model']} ({cpu['physical_cores']} cores / {cpu['logical_cores']} "
            f"threads, {cpu['memory_gib']} GiB{', ' + widest if widest else ''}); GPUs: {gpus}; "
            f"environment {hardware['environment']}")


def machine_label(hardware: dict, profile: str | None) -> str:
    """'cpu: AMD EPYC' or 'gpu: NVIDIA H200' — the machine a run measured, as merged rows and history name it."""
    gpus = hardware.get("gpus") or []
    what = gpus[0]["name"] if gpus else (hardware.get("cpu") or {}).get("model") or "unknown CPU"
    return f"{profile or 'cpu'}: {what}"


# -- provenance: what ran, at which commit --------------------------------------------------------------
PACKAGES = ("pytest-sketchbench", "pytest", "pytest-benchmark", "numpy", "scipy", "tensorflow",
            "tensorflow-cpu", "keras", "onnxruntime", "torch", "google-genai", "pytest-xdist", "pytest-html")


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
