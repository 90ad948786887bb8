"""pytest wiring: markers and hooks (the fixtures are in :mod:`.fixtures`). Registered through the ``pytest11`` entry
point as ``sketchbench``.

The command line, ini keys and config file are read by :mod:`.options`, xdist's side by :mod:`.parallel`;
measuring is in :mod:`.session`/:mod:`.measure`, judging in :mod:`.checks`, reporting in :mod:`.report`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_sketchbench import parallel
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.files import check_output_paths
from pytest_sketchbench.models import registry
from pytest_sketchbench.options import (
    RunSetup,
    addoptions,
    bundled_categories,
    model_of,
    parametrized_with_a_model,
    prepare_run,
    read_options,
    uses_sketchbench,
)
from pytest_sketchbench.progress import stage_progress

if TYPE_CHECKING:  # the measuring modules import numpy and scipy: only when a sketch test runs
    from pytest_sketchbench.session import SketchSession

SETUP_KEY = pytest.StashKey[RunSetup]()
SESSION_KEY = pytest.StashKey["SketchSession"]()
COLLECTED_KEY = pytest.StashKey[dict]()  # xdist controller: results and notes before a session exists
FULL_TRACEBACKS = [False]  # -v / --tb=long: show the traceback of a model's foreign exception
pytest_plugins = ["pytest_sketchbench.fixtures"]  # the fixtures a benchmark file asks for


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sketchbench", "sketchbench: sketch-classifier benchmarks as tests")
    addoptions(parser, group)
    group.addoption("--sketch-list-models", action="store_true", default=False,
                    help="list the available model names and where they come from, then exit")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sketch_device(*profiles): run only on these device profiles "
                                       "(cpu, gpu-small, gpu, gpu-large, gpu = any GPU profile)")
    config.addinivalue_line("markers", "requires_gpu: run only where a GPU profile is active")
    config.addinivalue_line("markers", "sketch_models(*names): run this test only for these models")
    parallel.configure(config)
    config.pluginmanager.register(BenchmarkOnlyKeepsLatency(), "sketchbench-benchmark-only")
    FULL_TRACEBACKS[0] = config.option.tbstyle == "long" or config.option.verbose > 0


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("sketch_list_models"):
        return None
    setup = _prepare(config)
    print("available sketchbench models:")  # no terminal reporter exists yet at this point
    for name, spec in setup.registry.specs.items():
        path = spec.config.get("path", "")
        print(f"  {name:<14} {spec.origin:<28} {path}")
    return 0


def _check_history_options(config: pytest.Config) -> None:
    """The history store opens before any test runs (a wrong URL or an unwritable path costs no measurement)."""
    target = config.getoption("sketch_history")
    if not target:
        if config.getoption("sketch_history_check") or config.getoption("sketch_history_base"):
            raise SketchBenchError("--sketch-history-check", "needs the history to check", "add --sketch-history DB")
        return
    from pytest_sketchbench.history.store import is_database_url, open_store

    if not is_database_url(target):
        check_output_paths({"--sketch-history": target})
    open_store(target).close()


def _prepare(config: pytest.Config) -> RunSetup:
    try:
        threads_given = config.getoption("sketch_threads") is not None or "sketch_threads" in config.inicfg
        check_output_paths({f"--sketch-{key.replace('_', '-')}": config.getoption(f"sketch_{key}")
                            for key in ("json", "html", "report_dir", "save_baseline")})
        _check_history_options(config)
        if config.getoption("sketch_profile") and not config.getoption("sketch_report_dir"):
            raise SketchBenchError("--sketch-profile", "has nowhere to write the traces and flame graphs",
                                   "add --sketch-report-dir DIR")
        return prepare_run(read_options(config), Path(config.rootpath), threads_given)
    except SketchBenchError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Validate options and config now (cheap); the measuring session waits for a sketch test."""
    config = session.config
    config.stash[SETUP_KEY] = _prepare(config)
    if parallel.distributed(config) and not parallel.worker_id(config):
        collected: dict = {"results": {}, "notes": []}
        config.stash[COLLECTED_KEY] = collected
        config.pluginmanager.register(parallel.ResultCollector(collected["results"], collected["notes"]),
                                      "sketchbench-results")


def session_of(config: pytest.Config, create: bool = False) -> SketchSession | None:
    """The measuring session: built on first need (a collected sketch test, or results from workers)."""
    sketch = config.stash.get(SESSION_KEY, None)
    if sketch is not None or not create or SETUP_KEY not in config.stash:
        return sketch
    from pytest_sketchbench.session import SketchSession

    if not parallel.worker_id(config):  # before the data loads: rendering strokes can take minutes
        from pytest_sketchbench.guard import interrupt_on_sigterm

        interrupt_on_sigterm(config)
    setup = config.stash[SETUP_KEY]
    placement = parallel.placement(config)
    if placement is None and setup.options.threads and not parallel.distributed(config):
        placement = parallel.pin_serial(setup.options.threads, config)  # an xdist controller runs no test
    try:
        sketch = SketchSession(setup, placement, config.stash.get(COLLECTED_KEY, None), _progress_printer(config),
                               stage_progress(config, worker=bool(parallel.worker_id(config))))
        _check_config_against_data(sketch)
    except SketchBenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = sketch
    if config.pluginmanager.hasplugin("html") and config.getoption("htmlpath", None):  # charts cost a second
        from pytest_sketchbench.report.html_report import PytestHtmlHooks

        config.pluginmanager.register(PytestHtmlHooks(sketch), "sketchbench-html")
    return sketch


def _progress_printer(config: pytest.Config) -> Callable[[str], None] | None:
    """Where slow preparation is said: the terminal of the process the user watches (not an xdist worker's)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None or parallel.worker_id(config):
        return None

    def say(text: str) -> None:
        terminal.write_line(f"sketchbench: {text}")
        terminal.flush()

    return say


def _check_config_against_data(sketch: SketchSession) -> None:
    """Loads the dataset now (so every process, the xdist controller too, knows it) and refuses category
    limits that name no category of it (unless the bundled split has it: then the header says it is not
    applied). A bad data file is left to the tests that need it to report."""
    try:
        categories = sketch.dataset().categories
    except SketchBenchError:
        return
    sketch.category_limits_not_applied = sketch.config.check_categories(categories, bundled_categories())


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """Header lines, only in runs that collected sketch tests (other projects see nothing)."""
    sketch = session_of(config)
    return [] if sketch is None else _header_lines(config, sketch)


def _header_lines(config: pytest.Config, sketch: SketchSession) -> list[str]:
    from pytest_sketchbench import hardware
    from pytest_sketchbench.host_audit import audit_line

    return [f"sketchbench: {line}" for line in
            [hardware.summary_line(sketch.hardware, sketch.profile), audit_line(sketch.host_audit()),
             *sketch.describe_setup(),
             *parallel.header_notes(config)]]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """The xdist controller collects nothing itself: the first worker's test ids tell it whether this is a
    sketch run (ids parametrized with a selected model), and then it prints the header once."""
    config = node.config
    setup = config.stash.get(SETUP_KEY, None)
    if setup is None or session_of(config) is not None:
        return
    if not any(parametrized_with_a_model(test_id, setup.selected) for test_id in ids):
        return
    sketch = session_of(config, create=True)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in _header_lines(config, sketch):
            reporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    setup = metafunc.config.stash.get(SETUP_KEY, None)
    if setup is None:
        return
    if "sketch_model" in metafunc.fixturenames:
        names = setup.selected
        marker = metafunc.definition.get_closest_marker("sketch_models")
        if marker is not None:
            names = [n for n in names if n in marker.args]
        metafunc.parametrize("sketch_model", names, indirect=True, ids=names, scope="session")
    if "sketch_batch_size" in metafunc.fixturenames:
        sizes = setup.options.batch_sizes
        metafunc.parametrize("sketch_batch_size", sizes, ids=[f"bs{b}" for b in sizes])


@pytest.hookimpl(tryfirst=True)  # before xdist turns the xdist_group marks into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(uses_sketchbench(item) for item in items):
        return
    parallel.pin_worker(config)  # a sketch run: its workers get their own cores before any model loads
    session_of(config, create=True)
    profiling = [item for item in items if "sketch_profile" in getattr(item, "fixturenames", ())]
    if profiling:  # profilers slow what they watch: every timing of the run comes first
        items[:] = [item for item in items if item not in profiling] + profiling
    if not config.pluginmanager.hasplugin("xdist"):  # the mark is xdist's: without it, --strict-markers refuses it
        return
    for item in items:
        model = model_of(item)
        if model is not None:
            item.add_marker(pytest.mark.xdist_group(model))  # one worker per model: loads once


class BenchmarkOnlyKeepsLatency:
    """``--benchmark-only`` skips tests without pytest-benchmark's fixture; ours ask for it on demand."""

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        result = yield
        for item in items:
            if "sketch_latency" in getattr(item, "fixturenames", ()):
                item.own_markers[:] = [m for m in item.own_markers
                                       if not (m.name == "skip" and "--benchmark-only" in str(m.kwargs.get("reason")))]
        return result


def pytest_runtest_setup(item: pytest.Item) -> None:
    sketch = session_of(item.config)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    sketch = session_of(item.config)
    model = model_of(item)
    if sketch is None or model is None:
        return report
    outcome = _outcome(report)
    if outcome:
        outcomes = sketch.record(model).outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if report.when == "call" and report.passed and _only_measured(sketch.record(model), item.nodeid):
        report.user_properties.append(NOT_GATED)  # travels with the report under xdist
    if parallel.worker_id(item.config) and (report.when != "setup" or outcome):
        parallel.attach_record(report, sketch.results.get(model))
    return report


NOT_GATED = ("sketchbench", "measured, not gated")


def _only_measured(record, nodeid: str) -> bool:
    """A test whose every check had no limit: it measured, it judged nothing."""
    mine = [v.outcome for v in record.verdicts if v.test == nodeid]
    return bool(mine) and all(outcome == "measured" for outcome in mine)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """'measured' is its own outcome (letter m): a test that only measured is never counted as a passed gate."""
    if report.when == "call" and report.passed and NOT_GATED in report.user_properties:
        return "measured", "m", ("MEASURED", {"cyan": True})
    return None


def _outcome(report: pytest.TestReport) -> str | None:
    """What one phase's report adds to the model's tally: a call's outcome, a setup's skip or error,
    a teardown's error — so that a skipped or erroring model never reads as passed."""
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    if report.when == "setup" and report.skipped:
        return "skipped"
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """Controller → worker: we switched ``-n`` to loadgroup, so each model's tests share one worker."""
    node.workerinput["sketchbench_loadgroup"] = node.config.getvalue("dist") == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a GPU host: one worker per visible GPU."""
    from pytest_sketchbench import hardware

    gpus = hardware.detect()["gpus"]
    visible = parallel.os.environ.get("CUDA_VISIBLE_DEVICES")
    if not gpus:
        return None
    return len([d for d in visible.split(",") if d.strip()]) if visible is not None else len(gpus)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    collected = session.config.stash.get(COLLECTED_KEY, {})
    sketch = session_of(session.config, create=bool(collected.get("results") or collected.get("notes")))
    if sketch is None:
        return
    for name in list(sketch.loaded):  # a Ctrl-C can skip fixture teardown: still free the runtimes
        sketch.release(name)
    try:
        if parallel.worker_id(session.config):
            from pytest_sketchbench.codec import to_wire

            session.config.workeroutput["sketchbench_results"] = json.dumps(
                {name: to_wire(record) for name, record in sketch.results.items()})
            return
        from pytest_sketchbench.report import writer

        vanished = _vanished_from_baseline(sketch)
        if vanished:
            sketch.notes.extend(f"error: {line}" for line in vanished)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        failures = writer.write_reports(session.config, sketch, int(exitstatus), interrupted)  # + speed index
        failures += _keep_history(session.config, sketch, int(exitstatus), interrupted)
        if failures:
            sketch.notes.extend(f"error: {line}" for line in failures)
            if session.exitstatus == pytest.ExitCode.OK:  # every test passed, but a report is missing
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        sketch.side_by_side.release_references()


def _keep_history(config: pytest.Config, sketch: SketchSession, exitstatus: int, interrupted: bool) -> list[str]:
    """``--sketch-history``: the run added (flagged when it did not complete); ``--sketch-history-check``: the
    regressions in the newest runs, one line each (they fail the run)."""
    target = config.getoption("sketch_history")
    if not target or not sketch.results:
        return []
    from pytest_sketchbench.history.recording import keep_run, run_of_session

    try:
        notes, regressions = keep_run(target, run_of_session(sketch, exitstatus, interrupted),
                                      list(sketch.results.values()), config.getoption("sketch_history_check"),
                                      sketch.config.history, sketch.config.path or "thresholds.toml",
                                      config.getoption("sketch_history_base"))
    except SketchBenchError as exc:
        return [f"history not kept: {exc}"]
    sketch.notes.extend(notes)
    return regressions


def _vanished_from_baseline(sketch: SketchSession) -> list[str]:
    """A model of ``--sketch-baseline`` that this run did not measure — missing from an ``all`` run, or erred,
    skipped or not run — fails the baseline gates: nothing vanishes silently."""
    if not sketch.baseline:
        return []
    from pytest_sketchbench.report.analysis import model_status

    everything = sketch.options.models.strip() == "all"
    lines = []
    for model in sketch.baseline.get("models", {}):
        record = sketch.results.get(model)
        if record is None:
            if everything or model in sketch.selected:
                lines.append(f"{model} is in the baseline {sketch.options.baseline} but was not measured in this run")
            continue
        status = model_status(record)
        if status in ("error", "skipped", "not run"):
            why = (record.errors or record.skipped or [""])[0]
            lines.append(f"{model} is in the baseline {sketch.options.baseline} but {status} in this run"
                         + (f": {why}" if why else ""))
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    registry.forget_decorated()  # a registration lives as long as the pytest run that imported it


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    sketch = session_of(config)
    if sketch is not None:
        from pytest_sketchbench.host_audit import audit_line
        from pytest_sketchbench.report import terminal
        from pytest_sketchbench.report.analysis import comparison_of, speed_index_text

        baseline_index = (sketch.baseline or {}).get("machine_speed_index")
        terminal.write_summary(terminalreporter, sketch.results, config, comparison_of(sketch), sketch.notes,
                               speed_index_text(sketch.measured_speed_index, baseline_index),
                               audit_line(sketch.host_audit()))
        reasons = [report.longrepr[2] for report in terminalreporter.stats.get("skipped", [])
                   if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3]
        line = terminal.skip_summary(reasons, list(sketch.results))
        if line and sketch.results and config.get_verbosity() > -2:
            terminalreporter.write_line(line)
