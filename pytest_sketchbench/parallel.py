"""Honest ``pytest -n``: one GPU or a disjoint core set per worker, results merged on the controller.

pytest-benchmark turns itself off under xdist; our latency path keeps measuring, and each
worker is pinned so that workers do not time each other's noise. Results travel as plain
dicts: a snapshot on each test report (so a crashed worker loses only what it had not yet
reported) and the worker's whole result set through ``workeroutput`` at its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket

import pytest

from pytest_sketchbench.codec import from_wire, to_wire
from pytest_sketchbench.results import ModelResult

WORKER_KEY = pytest.StashKey[dict]()
REPORT_ATTR = "sketchbench_record"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # a pinned worker's thread pools


def worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return workerinput["workerid"] if workerinput else None


def distributed(config: pytest.Config) -> bool:
    """Tests run on xdist workers: ``-n N`` on this host, or ``--tx`` gateways (other hosts over ssh)."""
    return bool(getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None))


def assign_gpu(worker_index: int, visible: str | None, gpu_count: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES value of one worker: its own GPU out of the visible ones."""
    if visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        devices = [str(i) for i in range(gpu_count)]
    if not devices:
        return None
    return devices[worker_index % len(devices)]


def assign_cores(worker_index: int, worker_count: int, cores: list[int]) -> tuple[list[int], bool]:
    """A disjoint block of cores for each worker; (cores, shared) — shared when workers outnumber cores."""
    if worker_count <= len(cores):
        per_worker = len(cores) // worker_count
        start = worker_index * per_worker
        return cores[start:start + per_worker], False
    return [cores[worker_index % len(cores)]], True


def configure(config: pytest.Config) -> None:
    """On the controller: group tests by model (each model loads on one worker). Pinning waits for
    :func:`pin_worker`: a run without sketch tests keeps its workers as xdist made them."""
    if getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"  # honour the xdist_group marks: each model on one worker
    if worker_id(config) is not None and config.workerinput.get("sketchbench_loadgroup"):
        # workers re-parse the command line, where plain -n means "load": tell xdist's worker side too
        config.option.loadgroup = True


def pin_worker(config: pytest.Config) -> None:
    """On a worker that collected sketch tests, before any model loads (and so before its framework is
    imported): its own GPU and a disjoint block of cores, for every thread the process already has and
    every one it starts, with the thread-pool variables set to match."""
    worker = worker_id(config)
    if worker is None or WORKER_KEY in config.stash:
        return
    count = int(config.workerinput.get("workercount", 1))
    index = int(config.workerinput.get("sketchbench_slot", int(worker.lstrip("gw") or 0) % count))
    placement: dict = {"worker": worker, "workers": count, "host": socket.gethostname(), "pid": os.getpid()}
    from pytest_sketchbench import hardware

    gpus = hardware.detect()["gpus"]
    if gpus:
        device = assign_gpu(index, os.environ.get("CUDA_VISIBLE_DEVICES"), len(gpus))
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            placement["cuda_visible_devices"] = device
    try:
        import psutil

        process = psutil.Process()
        available = sorted(process.cpu_affinity())
        cores, shared = assign_cores(index, count, available)
        pin_every_thread(process, cores)
        placement.update(cores=cores, shared_cores=shared, threads=len(cores))
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(len(cores))
    except (AttributeError, OSError):  # no affinity on this platform: say so, keep going
        placement.update(cores=None, shared_cores=True, threads=None)
    config.stash[WORKER_KEY] = placement


def pin_every_thread(process, cores: list[int]) -> dict[int, set[int]]:
    """Pin every thread the process has now, not only the calling one (a pool an import started keeps its own
    affinity otherwise, and its threads then run on the other cores); returns each one's previous cores."""
    previous = {}
    for thread in process.threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            previous[thread.id] = os.sched_getaffinity(thread.id)
            os.sched_setaffinity(thread.id, cores)
    return previous


def _restore(previous: dict[int, set[int]]) -> None:
    for thread, cores in previous.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(thread, cores)


def pin_serial(threads: int, config: pytest.Config) -> dict | None:
    """``--sketch-threads N`` without -n: pin this process to N cores, as each -n worker is pinned —
    timings then compare like with like (measured here: an unpinned 1-thread run was ~22 % slower). The
    previous affinity comes back when pytest unconfigures (a run inside another process must not leave it
    pinned: its later subprocesses would inherit one core)."""
    try:
        import psutil

        process = psutil.Process()
        cores = sorted(process.cpu_affinity())[:threads]
        previous = pin_every_thread(process, cores)
    except (AttributeError, OSError):
        return None
    config.add_cleanup(lambda: _restore(previous))
    return {"worker": None, "workers": 1, "cores": cores, "shared_cores": False, "threads": threads}


def placement(config: pytest.Config) -> dict | None:
    return config.stash.get(WORKER_KEY, None)


def header_notes(config: pytest.Config) -> list[str]:
    count = getattr(config.option, "numprocesses", None)
    gateways = getattr(config.option, "tx", None) or []
    if worker_id(config) or not (count or gateways):
        return []
    if gateways and not count:
        return [f"parallel: {len(gateways)} worker(s) on --tx gateways (each reports its own host's hardware)"]
    try:
        import psutil

        cores = len(psutil.Process().cpu_affinity())
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    workers = count if isinstance(count, int) else cores
    notes = []
    if int(pytest.__version__.split(".")[0]) >= 9:
        notes.append("pytest 9 changed node ids and pytest-xdist (<= 3.8) then ignores xdist_group: a model may "
                     "load on several workers (use pytest 8.4, as constraints.txt does)")
    if workers > cores:
        return [f"parallel: {workers} workers share {cores} cores — latency figures are contended", *notes]
    return [f"parallel: {workers} workers, {cores // workers} dedicated core(s) each; tests grouped by model", *notes]


# -- results across processes ---------------------------------------------------------------------
def attach_record(report, record: ModelResult | None) -> None:
    if record is not None:
        setattr(report, REPORT_ATTR, to_wire(record))


class ResultCollector:
    """Registered on the xdist controller only: gathers every worker's results into one set."""

    def __init__(self, results: dict, notes: list[str]):
        self.results, self.notes = results, notes
        self.slots: dict[str, int] = {}  # live worker → its block of cores

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        """Each worker's block of cores. A replacement (xdist starts gw2 when gw0 dies) takes the block the dead
        worker left: by its name it would get the block past the last core, i.e. none (threads 0, all cores)."""
        count = int(node.workerinput.get("workercount", 1))
        free = [slot for slot in range(count) if slot not in self.slots.values()]
        slot = free[0] if free else len(self.slots) % count
        self.slots[node.gateway.id] = node.workerinput["sketchbench_slot"] = slot

    def pytest_runtest_logreport(self, report) -> None:
        wire = getattr(report, REPORT_ATTR, None)
        if wire:
            record = from_wire(wire)
            self.results[record.model] = record

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report, sched) -> None:
        """A worker died inside a model's test (a segfault or abort in its runtime): recorded as that model's
        error, and the model's remaining tests are taken out of the queue — re-running them would crash the next
        worker too, until xdist gives up on the whole run."""
        scope = crashitem.split("@")[-1] if crashitem.rfind("@") > crashitem.rfind("]") else None
        if scope is None or scope not in self.results and scope not in getattr(sched, "workqueue", {}):
            return
        getattr(sched, "workqueue", {}).pop(scope, None)
        record = self.results.setdefault(scope, ModelResult(scope))
        test = crashitem.split("@")[0].split("::")[-1]
        record.errors.append(
            f"model '{scope}': its pytest worker died while running {test} ({_how_it_ended(report)}) — its other "
            "tests were not run; run it without -n to see the crash")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        worker = getattr(getattr(node, "gateway", None), "id", None) or output.get("workerid", "?")
        self.slots.pop(worker, None)
        if "sketchbench_results" in output:
            self.results.update({name: from_wire(record) for name, record
                                 in json.loads(output["sketchbench_results"]).items()})
        if error:
            lost = sorted(m for m, r in self.results.items() if (r.parallel or {}).get("worker") == worker)
            self.notes.append(f"worker {worker} crashed ({str(error).splitlines()[0][:120]}); kept the results "
                              f"its models ({', '.join(lost) or 'none'}) had reported before the crash")


def _how_it_ended(report) -> str:
    """How the crashed worker's process ended ("killed by SIGSEGV"), read from execnet's Popen of it (xdist hands
    the hook its worker as ``report.node``); where that is not there, that it ended."""
    popen = getattr(getattr(getattr(getattr(report, "node", None), "gateway", None), "_io", None), "popen", None)
    try:
        code = popen.wait(timeout=5)
    except Exception:  # no Popen (a remote worker), or it did not end: say what is known
        return "the process ended"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}: a crash in the runtime"
        except ValueError:
            return f"killed by signal {-code}"
    return f"the process exited with status {code}"
