"""What the command line, the ini file and the config file say about a run — resolved cheaply.

Everything here imports only the standard library, the config parser and the registry: the
plugin calls it at session start in *every* pytest run of an environment that has the plugin,
so usage errors (unknown model, malformed TOML) surface at once without paying for numpy,
scipy or a runtime. The measuring session (:mod:`.session`) is built only when a
collected test asks for a sketch fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_sketchbench.config import SketchConfig, load_config
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.models.registry import Registry

BUNDLED_DIR = Path(__file__).parent / "bundled"
BUNDLED_TEST_SPLIT = BUNDLED_DIR / "quickdraw_test.npz"


def bundled_categories() -> list[str]:
    """The bundled split's categories: a limit naming one of them is known, not a typo, on other data."""
    from pytest_sketchbench.data import read_category_file

    return read_category_file(BUNDLED_DIR / "categories.json")


# option name (without --sketch-) → (default, help)
OPTIONS: dict[str, tuple[str, str]] = {
    "models": ("cnn", "models to benchmark: a comma list of names, or 'all' (see --sketch-list-models)"),
    "data": ("", "test set: a .npz split or a folder of <category>.npy / .ndjson files (default: the bundled split)"),
    "categories": ("", "a categories.json for --sketch-data (label index = position)"),
    "config": ("", "thresholds/config TOML (default: thresholds.toml at the rootdir, if there is one)"),
    "samples-per-category": ("0", "use at most N drawings per category (stratified, seeded); 0 = all"),
    "batch-sizes": ("1,32,64,128", "batch sizes the latency tests measure"),
    "eval-batch-size": ("256", "batch size of the accuracy pass"),
    "latency-budget": ("1.0", "seconds of timed calls per model and batch size"),
    "device": ("", "force a device profile: cpu, gpu or a profile name (default: detected)"),
    "models-dir": ("", "folder of the built-in models' files (default: models/ at the rootdir)"),
    "seed": ("0", "seed of --sketch-samples-per-category"),
    "threads": ("0", "intra-op threads per runtime, process pinned to as many cores "
                     "(0 = runtime default; under -n: the worker's cores)"),
    "inconclusive": ("skip", "what a check the evidence cannot decide does to its test: skip (default: counted, "
                             "neither passed nor failed), fail or warn (the test passes with a warning)"),
    "baseline-models": ("", "folder of the baseline's model files: each selected model is timed interleaved "
                            "with its namesake from there (same-run latency ratio)"),
}
INCONCLUSIVE_POLICIES = ("skip", "fail", "warn")  # what a check the evidence cannot decide does to its test


@dataclass
class Options:
    """Everything the command line and ini file say about a run (paths already absolute)."""

    models: str = "cnn"
    data: str = ""
    categories: str = ""
    config: str = ""
    samples_per_category: int = 0
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32, 64, 128])
    eval_batch_size: int = 256
    latency_budget_s: float = 1.0
    device: str = ""
    models_dir: str = ""
    baseline: str = ""
    baseline_models: str = ""
    threads: int = 0  # runtime intra-op threads; 0 = the runtime's default (under -n: the worker's cores)
    threads_requested: int = 0  # what was asked for, when more than the usable cores (then clamped)
    seed: int = 0
    inconclusive: str = "skip"  # INCONCLUSIVE_POLICIES


def addoptions(parser: pytest.Parser, group) -> None:
    for name, (default, help_text) in OPTIONS.items():
        dest = "sketch_" + name.replace("-", "_")
        group.addoption(f"--sketch-{name}", dest=dest, default=None, help=f"{help_text} [ini: {dest}]")
        parser.addini(dest, help_text, type="string", default=default)
    add_report_options(group)


def add_report_options(group) -> None:
    group.addoption("--sketch-json", dest="sketch_json", default=None, metavar="PATH",
                    help="write the results as JSON (schema: pytest_sketchbench/report/schema.json)")
    group.addoption("--sketch-html", dest="sketch_html", default=None, metavar="PATH",
                    help="write a self-contained HTML report")
    group.addoption("--sketch-report-dir", dest="sketch_report_dir", default=None, metavar="DIR",
                    help="write per-model confusion.csv/per_category.csv/confusion.png, results.csv, summary.md")
    group.addoption("--sketch-save-baseline", dest="sketch_save_baseline", default=None, metavar="PATH",
                    help="save this run as a baseline (predictions, raw latency samples, memory, size)")
    group.addoption("--sketch-baseline", dest="sketch_baseline", default=None, metavar="PATH",
                    help="compare with a saved baseline: McNemar (accuracy), Mann-Whitney U (latency), margins")
    group.addoption("--sketch-history", dest="sketch_history", default=None, metavar="PATH_OR_URL",
                    help="add this run to a benchmark history: a SQLite file (created if missing) or a "
                         "postgresql:// URL (see sketchbench history)")
    group.addoption("--sketch-history-check", dest="sketch_history_check", action="store_true", default=False,
                    help="after adding the run, fail on a regression in the newest runs of the history ([history] "
                         "in the config says which figures and how large)")
    group.addoption("--sketch-history-base", dest="sketch_history_base", default=None, metavar="BRANCH",
                    help="the branch whose history this run continues (a pull request's target): the check reads "
                         "its runs and this branch's")
    group.addoption("--sketch-profile", dest="sketch_profile", action="store_true", default=False,
                    help="profile each model after its timings (runtime operators as a Chrome trace, the harness as "
                         "a flame graph) into --sketch-report-dir; never used for a timing gate"),


def _raw(config: pytest.Config, name: str) -> tuple[str, Path]:
    """The option's value and the folder a relative path in it is relative to.

    One rule for every relative path: relative to where it is written — the command line's to the
    directory pytest was started in, the ini file's to the ini file (TOML paths: to the TOML file).
    """
    dest = "sketch_" + name.replace("-", "_")
    value = config.getoption(dest)
    if value is not None:
        return str(value), Path(config.invocation_params.dir)
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return str(config.getini(dest)), base


def _path(config: pytest.Config, name: str) -> str:
    value, base = _raw(config, name)
    if not value:
        return ""
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def read_options(config: pytest.Config) -> Options:
    def number(name: str, cast, minimum):
        raw = _raw(config, name)[0]
        try:
            value = cast(raw)
        except ValueError:
            raise pytest.UsageError(f"--sketch-{name}: '{raw}' is not a valid {cast.__name__}") from None
        if not value >= minimum:  # also rejects NaN
            raise pytest.UsageError(f"--sketch-{name}: '{raw}' must be at least {minimum}")
        return value

    raw_sizes = _raw(config, "batch-sizes")[0]
    try:
        batch_sizes = sorted({int(b) for b in raw_sizes.split(",") if b.strip()})
    except ValueError:
        raise pytest.UsageError(f"--sketch-batch-sizes: '{raw_sizes}' is not a comma list of integers") from None
    if not batch_sizes or min(batch_sizes) < 1:
        raise pytest.UsageError(f"--sketch-batch-sizes: '{raw_sizes}' must list positive integers, e.g. 1,32,64")
    inconclusive = _raw(config, "inconclusive")[0]
    if inconclusive not in INCONCLUSIVE_POLICIES:
        raise pytest.UsageError(f"--sketch-inconclusive: '{inconclusive}' is not one of skip, fail, warn")
    models, models_base = _raw(config, "models")
    return Options(
        models=_absolute_ad_hoc(models, models_base), data=_path(config, "data"),
        categories=_path(config, "categories"),
        config=_path(config, "config"), samples_per_category=number("samples-per-category", int, 0),
        batch_sizes=batch_sizes, eval_batch_size=number("eval-batch-size", int, 1),
        latency_budget_s=number("latency-budget", float, 0.0), device=_raw(config, "device")[0],
        models_dir=_path(config, "models-dir"), seed=number("seed", int, 0), threads=number("threads", int, 0),
        baseline=config.getoption("sketch_baseline") or "", baseline_models=_path(config, "baseline-models"),
        inconclusive=inconclusive,
    )


def _absolute_ad_hoc(models: str, base: Path) -> str:
    """``v7=exports/cnn_v7.onnx`` entries of --sketch-models with the path made absolute (relative to where the
    option was written, like every path option)."""
    entries = []
    for entry in models.split(","):
        name, sep, path = entry.partition("=")
        if sep and path.strip():
            file = Path(path.strip()).expanduser()
            entry = f"{name.strip()}={file if file.is_absolute() else base / file}"
        entries.append(entry)
    return ",".join(entries)


def split_ad_hoc(models: str) -> tuple[str, dict[str, str]]:
    """'onnx,v7=/abs/cnn_v7.onnx' → ('onnx,v7', {'v7': '/abs/cnn_v7.onnx'})."""
    names, ad_hoc = [], {}
    for entry in models.split(","):
        name, sep, path = entry.partition("=")
        if sep:
            if not name.strip() or not path.strip():
                raise SketchBenchError("--sketch-models", f"'{entry.strip()}' is not name=path",
                                       "e.g. --sketch-models=onnx,v7=exports/cnn_v7.onnx")
            ad_hoc[name.strip()] = path.strip()
        names.append(name)
    return ",".join(names), ad_hoc


@dataclass
class RunSetup:
    """Options, the model registry, the parsed config and the selected models: what collection needs."""

    options: Options
    rootdir: Path
    registry: Registry
    config: SketchConfig
    config_origin: str  # "explicit", "rootdir default" or "none"
    selected: list[str]

    @property
    def models_dir(self) -> Path:
        """Where the built-in models' files are: --sketch-models-dir, else models/ at the rootdir."""
        return models_dir(self.options, self.rootdir)

    @property
    def data_path(self) -> Path:
        return Path(self.options.data) if self.options.data else BUNDLED_TEST_SPLIT

    @property
    def data_origin(self) -> str:
        return "explicit" if self.options.data else "bundled"


def models_dir(options: Options, rootdir: Path) -> Path:
    return Path(options.models_dir) if options.models_dir else rootdir / "models"


def build_registry(options: Options, rootdir: Path) -> tuple[Registry, Path, str]:
    """Every model name this run can select, the config file it came from, and how that file was chosen."""
    if options.config:
        config_path, origin = Path(options.config), "explicit"
        if not config_path.exists():
            raise SketchBenchError(str(config_path), "config file not found",
                                   "check --sketch-config, or omit it to use thresholds.toml at the rootdir")
    else:
        config_path = rootdir / "thresholds.toml"
        origin = "rootdir default" if config_path.exists() else "none"
    models_tables = load_config(config_path).models  # model tables first, to know every model name
    registry = Registry(models_dir(options, rootdir), models_tables, str(config_path), config_path.parent)
    return registry, config_path, origin


RUN_SETTINGS = {"threads": "intra-op threads per runtime, process pinned to as many cores (as --sketch-threads)"}


def prepare_run(options: Options, rootdir: Path, threads_given: bool = False) -> RunSetup:
    registry, config_path, origin = build_registry(options, rootdir)
    names, ad_hoc = split_ad_hoc(options.models)
    for name, path in ad_hoc.items():
        registry.add_file_model(name, path)
    config = load_config(config_path, registry.names())
    try:
        selected = registry.select(names)
    except SketchBenchError as exc:
        if origin != "none":
            raise
        raise SketchBenchError(exc.subject, exc.problem, f"{exc.fix}; no thresholds.toml at {rootdir}, so no "
                               "[models.*] table was read: run from the project's folder, or pass --sketch-config, "
                               "or name a file: --sketch-models=mine=path/to/model.onnx") from None
    _check_device(options.device, config)
    if names.strip() != "all":
        _check_model_files(registry, selected)
    _apply_run_settings(options, config, threads_given)
    usable = usable_cores()
    if options.threads > usable:  # more threads than cores only measures contention (p95 5 → 427 ms seen)
        options.threads_requested, options.threads = options.threads, usable
    return RunSetup(options, rootdir, registry, config, origin, selected)


def _check_model_files(registry: Registry, selected: list[str]) -> None:
    """A selected model whose runtime is not installed, or whose configured file is missing, is a usage error before
    any test (one line: what to install or which model this install can run; where the path was written), not an
    error repeated by every test of the model. Built-in files are checked at load, where the message says how to
    re-create them."""
    for name in selected:
        spec = registry[name]
        runtime = spec.runtime_row()
        if runtime is not None and not runtime.installed():
            runnable = [n for n in registry.names() if (row := registry[n].runtime_row()) and row.installed()
                        and (registry[n].config.get("path") is None or Path(registry[n].config["path"]).exists())]
            raise SketchBenchError(f"model '{name}'", f"its runtime needs {runtime.module}, which is not installed",
                                   f"pip install 'pytest-sketchbench[{runtime.extra}]', or pick a model this install "
                                   f"can run: --sketch-models={','.join(runnable[:3]) or '<name>'}")
        path = spec.config.get("path")
        if spec.origin != "builtin" and isinstance(path, str) and not Path(path).exists():
            raise SketchBenchError(f"model '{name}'", f"file not found: {path} (from {spec.origin})",
                                   "fix the path; a relative path is relative to the file it is written in "
                                   "(the config file, the conftest.py) or, on the command line, to the current folder")


def _check_device(device: str, config: SketchConfig) -> None:
    """--sketch-device names a device or a hardware profile; anything else is a typo, said before any test."""
    from pytest_sketchbench.hardware import profiles_from_config

    known = list(dict.fromkeys(["cpu", "gpu", *profiles_from_config(config.profiles)]))
    if device and device not in known:
        raise SketchBenchError("--sketch-device", f"'{device}' is neither a device nor a hardware profile",
                               f"use one of {', '.join(known)} (profiles: [profiles.<name>] in the config)")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def _apply_run_settings(options: Options, config: SketchConfig, threads_given: bool) -> None:
    """``[sketchbench]`` in the config file: run settings that travel with the limits they were set for
    (the command line and the ini file win)."""
    where = f"{config.path} [sketchbench]"
    unknown = sorted(set(config.settings) - set(RUN_SETTINGS))
    if unknown:
        raise SketchBenchError(where, f"unknown key(s) {', '.join(unknown)}",
                               f"known keys: {', '.join(f'{k} ({v})' for k, v in RUN_SETTINGS.items())}")
    threads = config.settings.get("threads")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise SketchBenchError(where, f"'threads' must be a whole number >= 0, got {threads!r}", "e.g. threads = 1")
        if not threads_given:
            options.threads = threads


def model_of(item) -> str | None:
    """The model a collected test item is parametrized with, if any."""
    return getattr(getattr(item, "callspec", None), "params", {}).get("sketch_model")


def parametrized_with_a_model(test_id: str, models: Iterable[str]) -> bool:
    """Is one of the test id's parameters (``test_x[cnn-bs1]``) exactly a model's name? Not merely text that
    starts like one: the suite's own ``test_config_errors[[cnn]\nmin_acuracy …]`` is no sketch test."""
    if "[" not in test_id or "]" not in test_id:
        return False
    # from the first bracket (a parameter may hold brackets of its own) to the last (xdist_group adds "@group")
    params = test_id[test_id.index("[") + 1:test_id.rindex("]")]
    return any(params == model or params.startswith(f"{model}-") or params.endswith(f"-{model}")
               or f"-{model}-" in params for model in models)


MARKERS = ("sketch_device", "requires_gpu", "sketch_models")


def uses_sketchbench(item) -> bool:
    """Does this collected test ask for any of the plugin's fixtures or carry one of its marks?"""
    return (any(name.startswith("sketch_") for name in getattr(item, "fixturenames", ()))
            or any(item.get_closest_marker(name) for name in MARKERS))
