"""The fixtures a benchmark file asks for: the model, its predictions, timings, limits and comparisons.

Each is a thin door into the session (:mod:`.session`); a user error (a missing runtime, a bad config) fails or
skips the test with one line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_sketchbench.errors import ModelUnavailable, PartnerFailure, SketchBenchError
from pytest_sketchbench.plugin import FULL_TRACEBACKS, session_of
from pytest_sketchbench.results import LatencyStats, Memory

if TYPE_CHECKING:
    from pytest_sketchbench.baseline_gates import BaselineGate
    from pytest_sketchbench.checks import ThresholdChecker
    from pytest_sketchbench.models.base import ModelPlugin
    from pytest_sketchbench.session import Predictions, SketchSession


def _fail_on_user_error(call: Callable):
    """A problem fails (or, when the user chose it, skips) with one line, printed once: no traceback and no
    chained copy. ``-v`` or ``--tb=long`` shows the traceback of an exception that was not ours."""
    try:
        return call()
    except ModelUnavailable as exc:
        message, skip = str(exc), True
    except SketchBenchError as exc:
        if exc.__cause__ is not None and FULL_TRACEBACKS[0]:
            raise
        message, skip = str(exc), False
    if skip:
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def sketch_session(request: pytest.FixtureRequest) -> SketchSession:
    """The run's state: options, registry, dataset, results."""
    return session_of(request.config, create=True)


@pytest.fixture(scope="session")
def sketch_config(sketch_session: SketchSession):
    """The parsed thresholds/config file."""
    return sketch_session.config


@pytest.fixture(scope="session")
def sketch_dataset(sketch_session: SketchSession):
    """The test set (bundled Quick, Draw! split unless --sketch-data says otherwise)."""
    return _fail_on_user_error(sketch_session.dataset)


@pytest.fixture(scope="session")
def sketch_model(request: pytest.FixtureRequest, sketch_session: SketchSession) -> Iterator[ModelPlugin]:
    """A loaded model plugin; parametrized over --sketch-models, loaded once, released at the end."""
    name = getattr(request, "param", None) or sketch_session.selected[0]
    plugin = _fail_on_user_error(lambda: sketch_session.load_model(name))
    yield plugin
    sketch_session.release(name)


@pytest.fixture(scope="session")
def sketch_predictions(sketch_model: ModelPlugin, sketch_session: SketchSession) -> Predictions:
    """One batched pass of the model over the dataset, shared by every accuracy test."""
    return _fail_on_user_error(lambda: sketch_session.predictions(sketch_model.name))


@pytest.fixture
def sketch_thresholds(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                      sketch_session: SketchSession) -> ThresholdChecker:
    """The model's limits on this device profile, with ``check_*`` methods that fail with a clear message."""
    from pytest_sketchbench.checks import ThresholdChecker

    name = sketch_model.name
    limits = sketch_session.config.limits_for(name, sketch_session.profile)
    options = sketch_session.options
    return ThresholdChecker(limits, sketch_session.record(name), request.node.nodeid, options.inconclusive,
                            host=sketch_session.audit.now, subsample=options.samples_per_category > 0)


@pytest.fixture
def sketch_relative_speed(sketch_model: ModelPlugin, sketch_session: SketchSession) -> Callable:
    """``measure(limit)`` → the model and the limit's reference timed in alternating rounds (ratio + 95 % CI).

    Latency limits default to batch 1, throughput limits to the largest ``--sketch-batch-sizes``.
    """
    def measure(limit) -> dict:
        latency = limit.key == "max_latency_ratio"
        default = 1 if latency else max(sketch_session.options.batch_sizes)
        bound = limit.bound if latency else 1 / limit.bound  # a throughput ratio is the inverse time ratio
        try:
            timing = sketch_session.side_by_side
            return _fail_on_user_error(lambda: timing.relative_speed(sketch_model.name, limit.reference,
                                                                     limit.batch or default, (bound,)))
        except PartnerFailure as failure:  # the reference's failure is recorded on it; this limit is not judged
            line = sketch_session.diagnostics.partner_failed(sketch_model.name, failure)
            pytest.skip(f"{limit.key} to {limit.reference} not judged: {line}")

    return measure


@pytest.fixture
def sketch_parity(sketch_model: ModelPlugin, sketch_session: SketchSession) -> Callable[[str], dict]:
    """``measure(other)`` → agreement and probability differences with model ``other`` on the same drawings
    (``other`` is loaded beside the model for it when it is not selected)."""
    return lambda other: _fail_on_user_error(lambda: sketch_session.diagnostics.parity(sketch_model.name, other))


@pytest.fixture
def sketch_end_to_end(sketch_model: ModelPlugin, sketch_session: SketchSession) -> Callable[[], dict]:
    """``measure()`` → one drawing from uint8 bitmap to class: p50/p95 and each stage's share."""
    return lambda: _fail_on_user_error(lambda: sketch_session.diagnostics.end_to_end(sketch_model.name))


@pytest.fixture
def sketch_pairwise(sketch_model: ModelPlugin, sketch_session: SketchSession) -> list[dict]:
    """The model timed interleaved with every local model selected after it (for the pairwise comparison)."""
    return _fail_on_user_error(lambda: sketch_session.diagnostics.pairwise_speed(sketch_model.name))


@pytest.fixture
def sketch_profile(request: pytest.FixtureRequest, sketch_model: ModelPlugin, sketch_session: SketchSession) -> dict:
    """With ``--sketch-profile``: the model's profile (Chrome trace, flame graph, top operators), written to
    ``--sketch-report-dir/<model>/``; tests using it run after every other test of the run."""
    if not request.config.getoption("sketch_profile"):
        pytest.skip("profiling is off (--sketch-profile)")
    from pytest_sketchbench.files import safe_name

    report_dir = Path(request.config.invocation_params.dir) / request.config.getoption("sketch_report_dir")
    folder = report_dir / safe_name(sketch_model.name)
    return _fail_on_user_error(lambda: sketch_session.diagnostics.take_profile(sketch_model.name, folder))


@pytest.fixture
def sketch_loadgen(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                   sketch_session: SketchSession) -> Callable[[str], object]:
    """``run(scenario)`` → the model under MLPerf LoadGen (``SingleStream``, ``MultiStream``, ``Server``,
    ``ServerPeak``, ``Offline`` or ``Accuracy``), as ``[<model>.loadgen]`` configures it; skips when that table
    asks for no such run. LoadGen's logs go to ``--sketch-report-dir/<model>/loadgen/<run>/``."""
    folder = request.config.getoption("sketch_report_dir")
    report_dir = Path(request.config.invocation_params.dir) / folder if folder else None
    runs = sketch_session.load_runs
    return lambda run: _fail_on_user_error(lambda: runs.loadgen_run(sketch_model.name, run, report_dir))


@pytest.fixture
def sketch_baseline_latency(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                            sketch_session: SketchSession, sketch_latency) -> Callable[[int], None]:
    """``check(batch_size)``: the latency gate against the baseline. With ``--sketch-baseline-models`` the
    baseline's file is timed interleaved with the model in this run (holds on any machine); otherwise the
    samples recorded in ``--sketch-baseline`` are compared, on the same hardware only."""
    from pytest_sketchbench.baseline_gates import BaselineGate, check_ab_latency

    name, options = sketch_model.name, sketch_session.options
    if not options.baseline_models and not options.baseline:
        pytest.skip("no --sketch-baseline-models or --sketch-baseline given")

    def check(batch_size: int) -> None:
        if options.baseline_models:
            from pytest_sketchbench.baseline import settings_for

            max_ratio = settings_for(sketch_session.baseline_settings, name)["ab_latency_max_ratio"]
            timing = sketch_session.side_by_side
            result = _fail_on_user_error(lambda: timing.relative_speed(name, f"baseline:{name}", batch_size,
                                                                       (max_ratio,)))
            check_ab_latency(name, result, max_ratio, sketch_session.record(name), request.node.nodeid,
                             options.inconclusive)
            return
        sketch_latency(batch_size)
        samples = sketch_session.record(name).timing[batch_size].samples_s
        comparison = _fail_on_user_error(lambda: sketch_session.baseline_for(name))
        gate = BaselineGate(comparison, sketch_session.record(name), request.node.nodeid)
        gate.check_latency(batch_size, samples, sketch_session.hardware)

    return check


@pytest.fixture
def sketch_latency(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                   sketch_session: SketchSession) -> Callable[[int], LatencyStats]:
    """``measure(batch_size)`` → latency statistics (:class:`~pytest_sketchbench.results.LatencyStats`); times
    through pytest-benchmark when it is on.

    pytest-benchmark is off under xdist (and with --benchmark-disable): then sketchbench's own
    timer measures, so ``pytest -n`` still gives honest figures.
    """

    def measure(batch_size: int) -> LatencyStats:
        known = sketch_session.record(sketch_model.name).timing.get(batch_size)
        benchmark = None
        if known is None and _benchmark_enabled(request.config):
            benchmark = request.getfixturevalue("benchmark")
        return _fail_on_user_error(lambda: sketch_session.measure_latency(sketch_model.name, batch_size, benchmark))

    return measure


def _benchmark_enabled(config: pytest.Config) -> bool:
    session = getattr(config, "_benchmarksession", None)
    return session is not None and not session.disabled


@pytest.fixture
def sketch_baseline(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                    sketch_session: SketchSession) -> BaselineGate:
    """Compare with ``--sketch-baseline``; tests using it skip when no baseline was given."""
    if not sketch_session.options.baseline:
        pytest.skip("no --sketch-baseline given")
    from pytest_sketchbench.baseline_gates import BaselineGate

    comparison = _fail_on_user_error(lambda: sketch_session.baseline_for(sketch_model.name))
    return BaselineGate(comparison, sketch_session.record(sketch_model.name), request.node.nodeid)


@pytest.fixture
def sketch_memory(sketch_predictions: Predictions, sketch_session: SketchSession) -> Memory:
    """Peak RSS growth over load + the accuracy pass, in MB."""
    memory = sketch_session.finish_memory(sketch_predictions.model)
    if memory is None:
        pytest.skip(f"{sketch_predictions.model}: no memory figure (its load was not tracked in this process)")
    return memory


