"""Shared helpers: tiny real models built from the bundled drawings (no training, no runtime needed)."""

from __future__ import annotations

import fcntl
import gc
import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

# The plugin imports its measuring modules only when a run collects sketch tests. pytester's in-process
# runs forget modules first imported inside them, and C extensions (scipy, scikit-learn) cannot be
# imported twice in one process: import them once here, outside every inner run.
import scipy.optimize  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401
import sklearn.metrics  # noqa: E402,F401

import pytest_sketchbench.report.writer  # noqa: E402,F401
import pytest_sketchbench.session  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz"


# -- the suite under pytest -n ------------------------------------------------------------------------------
# The suite's own xdist workers are not benchmark workers (the plugin pins a worker only once it collects a
# sketch test; the suite's tests start their own runs), and a test that judges wall-clock time must have the
# host to itself, as on a serial run: the other workers then wait (a neighbour would make its verdict
# "inconclusive", or time it wrong).
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def pytest_collection_modifyitems(config, items):
    """Under pytest -n the tests marked alone come first, in one block: one worker runs them back to back (holding
    the host from one to the next) while the others wait once, instead of idling at every switch."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("alone") is None)  # stable: same order on every worker


HOST_SHARE = pytest.StashKey["HostShare"]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # what the process holds before the test (earlier tests' runtimes, often TensorFlow and torch) is frozen out of
    # the collections the plugin makes before it times: otherwise each scans it all (seen: 0.3 s each; a test of
    # six in-process runs took 5.9 s alone and 36 s late in a -n 2 suite). Garbage from before waits till after.
    gc.freeze()
    try:
        return (yield from _shared_host(item, nextitem))
    finally:
        gc.unfreeze()


def _shared_host(item, nextitem):
    if not hasattr(item.config, "workerinput"):
        return (yield)
    # pytest-benchmark reads PYTEST_XDIST_WORKER: a pytest run started by a test (or a fixture) would switch it off
    hidden = {variable: os.environ.pop(variable) for variable in XDIST_VARIABLES if variable in os.environ}
    share = item.config.stash.get(HOST_SHARE, None)
    if share is None:  # the lock files lie in the run's own temporary folder (pytest removes it with old runs)
        share = item.config.stash[HOST_SHARE] = HostShare(Path(item.config.option.basetemp).parent / "host-share")
    alone = item.get_closest_marker("alone") is not None
    share.enter(alone)
    try:
        return (yield)
    finally:
        # not kept once the run stops (-x, --maxfail): this worker runs nothing more, and another may be waiting
        stopping = item.session.shouldfail or item.session.shouldstop
        share.leave(keep=alone and not stopping and nextitem is not None
                    and nextitem.get_closest_marker("alone") is not None)
        os.environ.update(hidden)


class HostShare:
    """A readers-writer lock over the suite's workers: a test shares the host, or (``alone``) waits until every
    running test is done and holds it by itself, kept from one test alone to the next on the same worker. The
    turnstile lets a waiting ``alone`` test in before new sharers."""

    def __init__(self, base: Path):
        self.turnstile, self.lock = open(f"{base}.turnstile", "a"), open(f"{base}.lock", "a")  # noqa: SIM115
        self.held: int | None = None

    def enter(self, alone: bool) -> None:
        mode = fcntl.LOCK_EX if alone else fcntl.LOCK_SH
        if self.held == mode:
            return
        self.leave(keep=False)
        fcntl.flock(self.turnstile, fcntl.LOCK_EX)
        fcntl.flock(self.lock, mode)
        fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        self.held = mode

    def leave(self, keep: bool) -> None:
        if self.held is not None and not keep:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.held = None

    def close(self) -> None:
        self.leave(keep=False)
        self.turnstile.close()
        self.lock.close()


@contextmanager
def host_share(base: Path, alone: bool) -> Iterator[None]:
    """One test's share of the host (what a worker does around each test)."""
    share = HostShare(base)
    share.enter(alone)
    try:
        yield
    finally:
        share.close()


@pytest.fixture(scope="session")
def bundled():
    from pytest_sketchbench.data import load_dataset

    return load_dataset(BUNDLED)


@pytest.fixture(scope="session")
def centroid_weights(bundled) -> tuple[np.ndarray, np.ndarray]:
    return centroid_arrays(bundled)


def centroid_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A nearest-centroid linear classifier (784 → n_categories): a real, if weak, sketch model."""
    x = dataset.images.reshape(len(dataset), -1).astype(np.float32) / 255.0
    means = np.stack([x[dataset.labels == k].mean(0) for k in range(len(dataset.categories))])
    weights = (means / np.linalg.norm(means, axis=1, keepdims=True)).T.astype(np.float32)
    return weights, np.zeros(len(dataset.categories), np.float32)


NUMPY_PLUGIN = textwrap.dedent('''
    import numpy as np
    from pytest_sketchbench import ModelInfo, ModelPlugin, register_model

    class CentroidModel(ModelPlugin):
        runtime = "numpy"
        options = ("weights", "scale", "degrade", "sleep_s")

        def load(self):
            data = np.load(self.config["weights"])
            self.w, self.b = data["w"], data["b"]
            self.categories = [str(c) for c in data["categories"]]

        def infer(self, prepared):
            if self.config.get("sleep_s"):
                import time
                time.sleep(float(self.config["sleep_s"]))
            x = prepared.reshape(len(prepared), -1)
            out = (x @ self.w + self.b) * float(self.config.get("scale", 20.0))
            if self.config.get("degrade"):  # a worse model: every k-th drawing gets class 0
                out[:: int(self.config["degrade"]), 0] += 1000.0
            return out

        def describe(self):
            return ModelInfo(self.name, self.runtime, np.__version__, "grayscale", [None, 28, 28, 1],
                             self.categories, self.config["weights"], 1000, int(self.w.size))
''')


@pytest.fixture
def centroid_project(pytester, centroid_weights, bundled):
    """A pytester project with the centroid model saved and a plugin module able to run it."""
    weights, bias = centroid_weights
    np.savez(pytester.path / "centroid.npz", w=weights, b=bias, categories=np.array(bundled.categories))
    pytester.makepyfile(centroid_plugin=NUMPY_PLUGIN)
    pytester.syspathinsert()
    return pytester


def judged_on_this_host(result) -> bool:
    """False where the run's host audit found the host unfit and a wall-clock verdict became inconclusive: the
    tests that expect such a verdict accept 'inconclusive' then (CI runs them on a quiet host)."""
    return "not judged on this host" not in result.stdout.str()


def assert_ran(result, measured: int = 0, **outcomes: int) -> None:
    """``assert_outcomes`` plus the plugin's own outcome: tests whose every check had no limit are 'measured'."""
    result.assert_outcomes(**outcomes)
    assert result.parseoutcomes().get("measured", 0) == measured, result.parseoutcomes()


def run_options(samples: int | None = 5, budget: float | None = None, batch_sizes: str | None = None) -> list[str]:
    """The options a test run of the plugin starts from: the bundled drawings, ``samples`` of them per category,
    an optional latency budget and batch sizes, and no pytest cache (runs share a machine, never state)."""
    options = [f"--sketch-data={BUNDLED}", "-p", "no:cacheprovider"]
    if samples is not None:
        options.append(f"--sketch-samples-per-category={samples}")
    if budget is not None:
        options.append(f"--sketch-latency-budget={budget}")
    if batch_sizes is not None:
        options.append(f"--sketch-batch-sizes={batch_sizes}")
    return options


def served_table(url: str, **options) -> str:
    """A ``[models.served]`` table: the shipped cnn behind an Open Inference Protocol server at ``url``, with
    ``options`` (``concurrency = 4``, …) added as TOML values."""
    import json

    lines = ["[models.served]", 'runtime = "v2"', f'url = "{url}"', 'model_name = "cnn"',
             f'categories = "{REPO / "models" / "cnn.classes.json"}"',
             *(f"{key} = {json.dumps(value)}" for key, value in options.items())]
    return "\n".join(lines) + "\n"
