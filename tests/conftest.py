"""Shared helpers: tiny real models built from the bundled drawings (no training, no runtime needed)."""

from __future__ import annotations

import fcntl
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
# The suite's own xdist workers are not benchmark workers, and a test that judges wall-clock time must have the
# host to itself, as on a serial run: the other workers then wait (a neighbour would make its verdict
# "inconclusive", or time it wrong).
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if hasattr(config, "workerinput"):  # the plugin pinned this worker to its share of cores: runs inside need all
        import psutil

        from pytest_sketchbench.parallel import THREAD_VARIABLES

        psutil.Process().cpu_affinity([])
        for variable in THREAD_VARIABLES:
            os.environ.pop(variable, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not hasattr(item.config, "workerinput"):
        return (yield)
    # pytest-benchmark reads PYTEST_XDIST_WORKER: a pytest run started by a test (or a fixture) would switch it off
    hidden = {variable: os.environ.pop(variable) for variable in XDIST_VARIABLES if variable in os.environ}
    try:
        alone = item.get_closest_marker("alone") is not None
        # the workers' temporary folders lie in the run's own (pytest removes it with old runs)
        with host_share(Path(item.config.option.basetemp).parent / "host-share", alone):
            return (yield)
    finally:
        os.environ.update(hidden)


@contextmanager
def host_share(base: Path, alone: bool) -> Iterator[None]:
    """A readers-writer lock over the suite's workers: a test shares the host, or (``alone``) waits until every
    running test is done and holds it by itself. The turnstile lets a waiting ``alone`` test in before new sharers."""
    with open(f"{base}.turnstile", "a") as turnstile, open(f"{base}.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
