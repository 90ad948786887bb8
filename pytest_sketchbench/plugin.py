"""pytest wiring: options, ini keys, markers, fixtures and hooks — nothing else lives here.

Measuring is in :mod:`.session`/:mod:`.measure`, judging in :mod:`.checks`, reporting in
:mod:`.report`. Registered through the ``pytest11`` entry point as ``sketchbench``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_sketchbench import hardware, parallel
from pytest_sketchbench.checks import BaselineGate, ThresholdChecker
from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.models import registry
from pytest_sketchbench.models.base import ModelPlugin
from pytest_sketchbench.report import terminal, writer
from pytest_sketchbench.report.html_report import PytestHtmlHooks
from pytest_sketchbench.session import Options, Predictions, SketchSession, build_registry, model_of

SESSION_KEY = pytest.StashKey[SketchSession]()

# option name (without --sketch-) → (ini type, default, help)
OPTIONS: dict[str, tuple[str, str, str]] = {
    "models": ("string", "cnn", "models to benchmark: a comma list of names, or 'all' (see --sketch-list-models)"),
    "data": ("string", "", "test set: a .npz split or a folder of <category>.npy files"
                         " (default: data/quickdraw_test.npz)"),
    "categories": ("string", "", "a categories.json for --sketch-data (label index = position)"),
    "config": ("string", "", "thresholds/config TOML (default: thresholds.toml at the rootdir)"),
    "samples-per-category": ("string", "0", "use at most N drawings per category (stratified, seeded); 0 = all"),
    "batch-sizes": ("string", "1,32,64,128", "batch sizes the latency tests measure"),
    "eval-batch-size": ("string", "256", "batch size of the accuracy pass"),
    "latency-budget": ("string", "1.0", "seconds of timed calls per model and batch size"),
    "device": ("string", "", "force a device profile: cpu, gpu or a profile name (default: detected)"),
    "models-dir": ("string", "", "folder of the built-in models' files (default: models/ at the rootdir)"),
    "seed": ("string", "0", "seed of --sketch-samples-per-category"),
    "threads": ("string", "0", "intra-op threads per runtime, process pinned to as many cores "
                                "(0 = runtime default; under -n: the worker's cores)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sketchbench", "sketchbench: sketch-classifier benchmarks as tests")
    for name, (kind, default, help_text) in OPTIONS.items():
        dest = "sketch_" + name.replace("-", "_")
        group.addoption(f"--sketch-{name}", dest=dest, default=None, help=f"{help_text} [ini: {dest}]")
        parser.addini(dest, help_text, type=kind, default=default)
    group.addoption("--sketch-list-models", action="store_true", default=False,
                    help="list the available model names and where they come from, then exit")
    terminal.addoption(group)


def _option(config: pytest.Config, name: str) -> str:
    dest = "sketch_" + name.replace("-", "_")
    value = config.getoption(dest)
    return str(value if value is not None else config.getini(dest))


def read_options(config: pytest.Config) -> Options:
    def number(name: str, cast):
        raw = _option(config, name)
        try:
            return cast(raw)
        except ValueError:
            raise pytest.UsageError(f"--sketch-{name}: '{raw}' is not a valid {cast.__name__}") from None

    raw_sizes = _option(config, "batch-sizes")
    try:
        batch_sizes = sorted({int(b) for b in raw_sizes.split(",") if b.strip()})
    except ValueError:
        raise pytest.UsageError(f"--sketch-batch-sizes: '{raw_sizes}' is not a comma list of integers") from None
    if not batch_sizes or min(batch_sizes) < 1:
        raise pytest.UsageError(f"--sketch-batch-sizes: '{raw_sizes}' must list positive integers, e.g. 1,32,64")
    return Options(
        models=_option(config, "models"), data=_option(config, "data"), categories=_option(config, "categories"),
        config=_option(config, "config"), samples_per_category=number("samples-per-category", int),
        batch_sizes=batch_sizes, eval_batch_size=number("eval-batch-size", int),
        latency_budget_s=number("latency-budget", float), device=_option(config, "device"),
        models_dir=_option(config, "models-dir"), seed=number("seed", int), threads=number("threads", int),
        baseline=config.getoption("sketch_baseline") or "",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sketch_device(*profiles): run only on these device profiles "
                                       "(cpu, gpu-small, gpu, gpu-large, gpu = any GPU profile)")
    config.addinivalue_line("markers", "requires_gpu: run only where a GPU profile is active")
    config.addinivalue_line("markers", "sketch_models(*names): run this test only for these models")
    parallel.configure(config)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("sketch_list_models"):
        return None
    try:
        registry, _ = build_registry(read_options(config), Path(config.rootpath))
    except SketchBenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    print("available sketchbench models:")  # no terminal reporter exists yet at this point
    for name, spec in registry.specs.items():
        path = spec.config.get("path", "")
        print(f"  {name:<14} {spec.origin:<28} {path}")
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    try:
        sketch = SketchSession(read_options(config), Path(config.rootpath))
    except SketchBenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    sketch.placement = parallel.placement(config)
    if sketch.placement is None and sketch.options.threads:
        sketch.placement = parallel.pin_serial(sketch.options.threads)
    config.stash[SESSION_KEY] = sketch
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(PytestHtmlHooks(sketch), "sketchbench-html")
    if getattr(config.option, "numprocesses", None) and not parallel.worker_id(config):
        config.pluginmanager.register(parallel.ResultCollector(sketch.results, sketch.notes), "sketchbench-results")


def _session(config: pytest.Config) -> SketchSession | None:
    return config.stash.get(SESSION_KEY, None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    sketch = _session(config)
    if sketch is None:
        return []
    lines = [f"sketchbench: {hardware.summary_line(sketch.hardware, sketch.profile)}",
             f"sketchbench: models {', '.join(sketch.selected)}; config {sketch.config.path or 'none'}"]
    return lines + [f"sketchbench: {note}" for note in parallel.header_notes(config)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sketch = _session(metafunc.config)
    if sketch is None:
        return
    if "sketch_model" in metafunc.fixturenames:
        names = sketch.selected
        marker = metafunc.definition.get_closest_marker("sketch_models")
        if marker is not None:
            names = [n for n in names if n in marker.args]
        metafunc.parametrize("sketch_model", names, indirect=True, ids=names, scope="session")
    if "sketch_batch_size" in metafunc.fixturenames:
        sizes = sketch.options.batch_sizes
        metafunc.parametrize("sketch_batch_size", sizes, ids=[f"bs{b}" for b in sizes])


@pytest.hookimpl(tryfirst=True)  # before xdist turns the xdist_group marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sketch = _session(config)
    if sketch is None:
        return
    for item in items:
        model = model_of(item)
        if model is not None:
            item.add_marker(pytest.mark.xdist_group(model))  # one worker per model: loads once


def pytest_runtest_setup(item: pytest.Item) -> None:
    sketch = _session(item.config)
    if sketch is None:
        return
    wanted: list[str] = []
    for marker in item.iter_markers("sketch_device"):
        wanted += list(marker.args)
    if item.get_closest_marker("requires_gpu"):
        wanted.append("gpu")
    if wanted and not profile_matches(sketch.profile, wanted):
        pytest.skip(f"needs device profile {' or '.join(wanted)}; this run's profile is '{sketch.profile}'"
                    " (force one with --sketch-device)")


def profile_matches(profile: str, wanted: list[str]) -> bool:
    """'gpu' in a mark means any GPU profile; other names must match exactly."""
    return profile in wanted or ("gpu" in wanted and profile.startswith("gpu"))


def _fail_on_user_error(call: Callable):
    """A user-fixable problem fails (or, when the user chose it, skips) with one line — no traceback."""
    try:
        return call()
    except ModelUnavailable as exc:
        pytest.skip(str(exc))
    except SketchBenchError as exc:
        pytest.fail(str(exc), pytrace=False)


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sketch_session(request: pytest.FixtureRequest) -> SketchSession:
    """The run's state: options, registry, dataset, results."""
    return request.config.stash[SESSION_KEY]


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
    limits = sketch_session.config.limits_for(sketch_model.name, sketch_session.profile)
    return ThresholdChecker(limits, sketch_session.record(sketch_model.name), request.node.nodeid)


@pytest.fixture
def sketch_latency(request: pytest.FixtureRequest, sketch_model: ModelPlugin,
                   sketch_session: SketchSession) -> Callable[[int], dict]:
    """``measure(batch_size)`` → latency statistics; times through pytest-benchmark when it is on.

    pytest-benchmark is off under xdist (and with --benchmark-disable): then sketchbench's own
    timer measures, so ``pytest -n`` still gives honest figures.
    """

    def measure(batch_size: int) -> dict:
        known = sketch_session.record(sketch_model.name)["timing"].get(str(batch_size))
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
    comparison = _fail_on_user_error(lambda: sketch_session.baseline_for(sketch_model.name))
    return BaselineGate(comparison, sketch_session.record(sketch_model.name), request.node.nodeid)


@pytest.fixture
def sketch_memory(sketch_predictions: Predictions, sketch_session: SketchSession) -> dict:
    """Peak RSS growth over load + the accuracy pass, in MB."""
    return sketch_session.finish_memory(sketch_predictions.model)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    sketch = _session(item.config)
    model = model_of(item)
    if sketch is not None and model is not None and parallel.worker_id(item.config) and report.when != "setup":
        parallel.attach_record(report, sketch.results.get(model))
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """Controller → worker: we switched ``-n`` to loadgroup, so each model's tests share one worker."""
    node.workerinput["sketchbench_loadgroup"] = node.config.getvalue("dist") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a GPU host: one worker per visible GPU."""
    gpus = hardware.detect()["gpus"]
    visible = parallel.os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpus:
        return None
    return len([d for d in visible.split(",") if d.strip()]) if visible is not None else len(gpus)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    sketch = _session(session.config)
    if sketch is None:
        return
    for name in list(sketch.loaded):  # a Ctrl-C can skip fixture teardown: still free the runtimes
        sketch.release(name)
    if parallel.worker_id(session.config):
        session.config.workeroutput["sketchbench_results"] = json.dumps(sketch.results)
        return
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    writer.write_reports(session.config, sketch, int(exitstatus), interrupted)


def pytest_unconfigure(config: pytest.Config) -> None:
    registry.forget_decorated()  # a registration lives as long as the pytest run that imported it


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    sketch = _session(config)
    if sketch is not None:
        terminal.write_summary(terminalreporter, sketch.results, config, sketch.notes)
