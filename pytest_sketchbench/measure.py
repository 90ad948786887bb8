"""Measuring: the accuracy pass, latency timing, memory and load time.

Measuring is separate from running (the plugins) and from judging (thresholds): each
function here takes a loaded model and returns plain numbers.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import psutil

from pytest_sketchbench import hardware
from pytest_sketchbench.data import Dataset
from pytest_sketchbench.errors import ModelOutputError
from pytest_sketchbench.models.base import ModelPlugin

MB = 1024 * 1024


@dataclass
class AccuracyPass:
    """One batched pass of a model over a dataset."""

    probabilities: np.ndarray | None
    predicted: np.ndarray
    seconds: float
    open_predicted: np.ndarray | None = None  # argmax over all the model's classes; -1 outside the dataset

    @property
    def throughput(self) -> float:
        return len(self.predicted) / self.seconds if self.seconds > 0 else float("inf")


def accuracy_pass(model: ModelPlugin, dataset: Dataset, batch_size: int,
                  columns: np.ndarray | None = None,
                  tick: Callable[[int, int], None] | None = None) -> AccuracyPass:
    """Predict every drawing once, a batch at a time (preprocessing vectorised per batch).

    ``columns`` (from :func:`~pytest_sketchbench.data.category_columns`) picks, per dataset category, the
    model's output of that name: outputs are then in the dataset's order, renormalised over its categories
    (closed-set), and where the model knows more classes the open-set answer is kept beside them. ``tick`` hears
    how many drawings are done after each batch.
    """
    outputs, open_labels = [], []
    to_dataset = None if columns is None else _to_dataset(model, columns)
    started = time.perf_counter()
    for start in range(0, len(dataset), batch_size):
        answers, open_set = _batch_answers(model, dataset.images[start:start + batch_size], columns, to_dataset)
        if model.outputs_probabilities:
            _check_width(model, answers.shape[1], dataset.categories)
        outputs.append(answers)
        open_labels.append(open_set)
        if tick is not None:  # drawings done, of all (a progress display; never timed)
            tick(min(start + batch_size, len(dataset)), len(dataset))
    model.synchronize()
    seconds = time.perf_counter() - started
    if not model.outputs_probabilities:  # class-only models: -1 marks an invalid answer
        return AccuracyPass(None, np.concatenate(outputs), seconds)
    probabilities = np.concatenate(outputs)
    extra_classes = to_dataset is not None and len(to_dataset) > len(columns)
    return AccuracyPass(probabilities, probabilities.argmax(axis=1), seconds,
                        np.concatenate(open_labels) if extra_classes else None)


def classify(model: ModelPlugin, images: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """The dataset label of each drawing, as the accuracy pass scores it (closed-set over the dataset's
    categories where ``columns`` maps them): what a load scenario's answers are checked against."""
    answers, _ = _batch_answers(model, images, columns, None if columns is None else _to_dataset(model, columns))
    model.synchronize()
    return answers.argmax(axis=1) if model.outputs_probabilities else answers


def _batch_answers(model: ModelPlugin, images: np.ndarray, columns: np.ndarray | None,
                   to_dataset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """One batch in the dataset's categories: probabilities renormalised over them (closed-set) with the
    open-set label beside them where ``columns`` maps them, or labels (-1: invalid) for class-only models."""
    raw = model.infer(model.prepare(images))
    if not model.outputs_probabilities:
        labels = model.to_labels(raw)
        return (labels if to_dataset is None else _mapped(labels, to_dataset)), None
    probabilities = model.to_probabilities(raw, len(images))
    if columns is None:
        return probabilities, None
    open_labels = _mapped(probabilities.argmax(axis=1), to_dataset)
    probabilities = probabilities[:, columns]
    probabilities /= np.maximum(probabilities.sum(axis=1, keepdims=True), 1e-300)
    return probabilities, open_labels


def _to_dataset(model: ModelPlugin, columns: np.ndarray) -> np.ndarray:
    """Model label → dataset label, -1 for a class outside the dataset."""
    to_dataset = np.full(max(len(model.categories or ()), int(columns.max()) + 1), -1, dtype=np.int64)
    to_dataset[columns] = np.arange(len(columns))
    return to_dataset


def _mapped(labels: np.ndarray, to_dataset: np.ndarray) -> np.ndarray:
    inside = (labels >= 0) & (labels < len(to_dataset))
    return np.where(inside, to_dataset[np.clip(labels, 0, len(to_dataset) - 1)], -1)


def _check_width(model: ModelPlugin, width: int, categories: list[str]) -> None:
    """A model without a class list must still score every category of the dataset, in its order."""
    if width != len(categories):
        raise ModelOutputError(f"model '{model.name}'", f"outputs {width} scores per drawing, but the dataset has "
                               f"{len(categories)} categories", "give the model a class list (categories = [...]) "
                               "or choose the matching dataset with --sketch-data / --sketch-categories")


def time_calls(call: Callable[[], object], rounds: int, warmup: int = 0) -> list[float]:
    """Raw seconds per call: our own timer, used where pytest-benchmark is off (e.g. under xdist).

    The loop mirrors pytest-benchmark's runner (perf_counter around one call, GC left as is),
    so both paths measure the same thing.
    """
    for _ in range(warmup):
        call()
    timer = time.perf_counter
    samples = []
    for _ in range(rounds):
        start = timer()
        call()
        samples.append(timer() - start)
    return samples


@dataclass
class Interleaved:
    """Per-call seconds of two workloads timed in alternating blocks, on two clocks: wall time, and this
    process's CPU time (all its threads), which a preemption by another process barely moves."""

    wall_a: list[float]
    wall_b: list[float]
    cpu_a: list[float]
    cpu_b: list[float]

    def extend(self, more: Interleaved) -> None:
        for name in ("wall_a", "wall_b", "cpu_a", "cpu_b"):
            getattr(self, name).extend(getattr(more, name))

    def clock(self, name: str) -> tuple[list[float], list[float]]:
        return (self.wall_a, self.wall_b) if name == "wall" else (self.cpu_a, self.cpu_b)


def time_interleaved(call_a: Callable[[], object], call_b: Callable[[], object], rounds: int,
                     warmup: int = 0, block: int = 1, start_with_b: bool = False) -> Interleaved:
    """Two workloads timed in alternating rounds: ``block`` calls of A then of B, then B first, and so on
    (ABBA…); each call on the wall clock and on the process's CPU clock.

    Both see the same machine state — a busy neighbour, a frequency change — so the ratio of their
    medians holds where each absolute figure does not. Swapping the order cancels any advantage of
    going first; short blocks (rather than single calls) keep one runtime's idle threads, still
    spinning after its last call, from landing on every call of the other (only a block's first call
    can see them, and the median ignores it). ``start_with_b`` continues an ABBA sequence that ended
    on an odd number of rounds.
    """
    for _ in range(warmup):
        call_a()
        call_b()
    wall, cpu = time.perf_counter, time.process_time
    out = Interleaved([], [], [], [])
    sides = ((call_a, out.wall_a, out.cpu_a), (call_b, out.wall_b, out.cpu_b))
    for index in range(rounds):
        for call, walls, cpus in sides[:: -1 if (index % 2 == 1) != start_with_b else 1]:
            for _ in range(block):
                cpu_start, wall_start = cpu(), wall()
                call()
                wall_end, cpu_end = wall(), cpu()
                walls.append(wall_end - wall_start)
                cpus.append(cpu_end - cpu_start)
    return out


def first_call_s(plugin: ModelPlugin, images: np.ndarray) -> float:
    """Seconds of the first runtime call after loading (graph tracing, allocations, kernel selection):
    what a freshly started service pays on its first request."""
    prepared = plugin.prepare(images)
    started = time.perf_counter()
    plugin.infer(prepared)
    plugin.synchronize()
    return time.perf_counter() - started


STAGES = ("preprocess", "runtime", "postprocess")


def time_end_to_end(plugin: ModelPlugin, images: np.ndarray, rounds: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each stage from uint8 bitmaps to classes — ``prepare``, the runtime call (and the
    device wait), then probabilities and the argmax — each stage timed within the same calls, so the shares
    add up to the whole."""
    def classes(raw):
        if plugin.outputs_probabilities:
            return plugin.to_probabilities(raw, len(images)).argmax(axis=1)
        return plugin.to_labels(raw)

    for _ in range(warmup):
        classes(plugin.infer(plugin.prepare(images)))
    timer = time.perf_counter
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(rounds):
        start = timer()
        prepared = plugin.prepare(images)
        prepared_at = timer()
        raw = plugin.infer(prepared)
        plugin.synchronize()
        inferred_at = timer()
        classes(raw)
        done = timer()
        samples["preprocess"].append(prepared_at - start)
        samples["runtime"].append(inferred_at - prepared_at)
        samples["postprocess"].append(done - inferred_at)
    return samples


def plan_rounds(call: Callable[[], object], budget_s: float, min_rounds: int = 5, max_rounds: int = 1000) -> int:
    """How many rounds fit in ``budget_s``, from three probe calls (which also warm up)."""
    probe = time_calls(call, 3)
    per_call = max(float(np.median(probe)), 1e-7)
    return int(np.clip(budget_s / per_call, min_rounds, max_rounds))


class MemoryTracker:
    """Peak resident memory of this process while the block runs (sampled every few ms).

    The sampler thread takes the GIL every few milliseconds: timing must never run beside it
    (measured: +60 % on a Keras model's batch-1 p50), so :meth:`paused` stops it outright.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._running = threading.Event()

    def __enter__(self) -> MemoryTracker:
        gc.collect()
        self.start_bytes = self.peak_bytes = self.process.memory_info().rss
        self._running.set()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while True:
            self._running.wait()  # blocks, without waking, while paused
            if self._stop.wait(self.interval_s):
                return
            if self._running.is_set():
                self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss)

    def _take(self) -> None:
        self.peak_bytes = max(self.peak_bytes, self.process.memory_info().rss)

    @contextmanager
    def paused(self):
        """No sampling inside the block (its peak is read once on each side of it)."""
        self._take()
        self._running.clear()
        try:
            yield
        finally:
            self._take()
            self._running.set()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join()
        self._take()

    @property
    def growth_mb(self) -> float:
        return (self.peak_bytes - self.start_bytes) / MB


@contextmanager
def quiet_process(trackers, settle_s: float = 0.05):
    """Time with nothing else of ours running: memory samplers paused, garbage collected, and a short
    pause so that threads of runtimes used just before (OpenMP and ORT pools spin after their last job)
    go idle before the first timed call."""
    with ExitStack() as stack:
        for tracker in trackers:
            stack.enter_context(tracker.paused())
        gc.collect()
        time.sleep(settle_s)
        yield


def timed_call(plugin: ModelPlugin, prepared):
    """The call that is timed: the runtime alone, waiting for the device where there is one."""
    if plugin.device == "cpu":
        return lambda: plugin.infer(prepared)

    def call():
        plugin.infer(prepared)
        plugin.synchronize()

    return call


def gpu_memory(plugin: ModelPlugin) -> dict:
    """Device memory of a model on a GPU: its runtime's allocator peak and NVML's figure for this process."""
    peak = plugin.gpu_memory_peak_bytes()
    nvml = hardware.process_gpu_memory_mb()
    return {"runtime_peak_mb": None if peak is None else peak / MB, "nvml_process_mb": nvml,
            "peak_mb": peak / MB if peak is not None else nvml}
