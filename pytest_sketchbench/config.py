"""``thresholds.toml``: per-model limits (with per-profile overrides) and model/profile tables.

    [cnn]                       # limits for the model named "cnn"
    min_accuracy = 0.93
    min_category_accuracy = 0.75          # every category…
    [cnn.category_accuracy]               # …or single ones
    pizza = 0.6
    [cnn.profile.cpu]                     # overrides on the "cpu" device profile
    max_latency_ms = 1.5
    [onnx.loadgen]                        # MLPerf LoadGen scenarios and their gates (config.LOADGEN_SETTINGS)
    server_target_qps = 200
    server_max_p99_ms = 5

    [models.mine]               # register a model from a file (or plugin = "pkg.mod:Class")
    path = "models/mine.onnx"

Anything unknown is a usage error naming the file, the table and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_sketchbench.errors import SketchBenchError

# key → (type, meaning); the meaning is shown in messages and the README.
LIMITS: dict[str, tuple[type, str]] = {
    "min_accuracy": (float, "top-1 accuracy on the test set"),
    "min_top5_accuracy": (float, "top-5 accuracy"),
    "max_ece": (float, "expected calibration error of the top-label confidence (15 equal-width bins)"),
    "min_category_accuracy": (float, "accuracy of every category"),
    "max_latency_ms": (float, "p50 latency at batch size 1 (ms)"),
    "max_p95_latency_ms": (float, "p95 latency at batch size 1 (ms)"),
    "max_p99_latency_ms": (float, "p99 latency at batch size 1 (ms)"),
    "min_throughput": (float, "drawings per second at the largest batch size"),
    "max_memory_mb": (float, "peak RSS growth over load + inference (MB)"),
    "max_gpu_memory_mb": (float, "peak device memory on a GPU: the runtime's allocator peak, else NVML's (MB)"),
    "max_model_mb": (float, "model file size (MB)"),
    "max_load_s": (float, "load time (s): absolute, put it under a hardware profile"),
    "max_load_ratio": (float, "load time ÷ the calibration network's batch-1 p50 in this run: load time in "
                              "calibration calls (travels across machines)"),
    "max_end_to_end_ms": (float, "p50 of one drawing end to end: uint8 bitmap → preprocessing → runtime → class (ms)"),
    "max_overhead_share": (float, "share of the end-to-end time spent outside the runtime call (pre/post-processing)"),
    "max_cold_start_ms": (float, "the first call after loading (ms)"),
    "max_cold_start_ratio": (float, "the first call after loading ÷ the warm batch-1 p50 (travels across machines)"),
    "min_success_rate": (float, "API models: share of requests answered with a category"),
    "max_invalid_rate": (float, "API models: share of requests answered with no category of the dataset"),
    "max_cost_per_1000": (float, "API models: estimated cost per 1,000 drawings (USD)"),
}
FRACTIONS = {"max_overhead_share", "min_success_rate", "max_invalid_rate"}  # limits that are shares in [0, 1]
BUILTIN_PROFILES = ("cpu", "gpu-small", "gpu", "gpu-large")  # hardware.DEFAULT_PROFILES, plus cpu
CALIBRATION = "calibration"  # the built-in reference workload (pytest_sketchbench/calibration/)
# relative speed limits: key → (bound key, meaning); measured interleaved with a reference model
RATIO_LIMITS: dict[str, tuple[str, str]] = {
    "max_latency_ratio": ("max", "p50 latency ÷ the reference's, timed interleaved (default batch 1)"),
    "min_throughput_ratio": ("min", "throughput ÷ the reference's, timed interleaved (default: largest batch)"),
}

# parity limits between two models on the same drawings: key → (bound key, meaning)
PARITY_LIMITS: dict[str, tuple[str, str]] = {
    "min_agreement": ("min", "share of drawings where the model and the one named in 'with' give the same class"),
    "max_probability_diff": ("max", "largest |probability difference| from the model named in 'with'"),
}


# [model.loadgen]: MLPerf LoadGen scenarios (loadgen.py) and their gates — key → (type, meaning)
LOADGEN_SETTINGS: dict[str, tuple[type, str]] = {
    "single_stream_max_p90_ms": (float, "SingleStream: p90 latency of one drawing (ms)"),
    "multi_stream_max_p99_ms": (float, "MultiStream: p99 latency of a query of samples_per_query drawings (ms)"),
    "multi_stream_samples_per_query": (int, "MultiStream: drawings per query (MLPerf: 8)"),
    "server_target_qps": (float, "Server: Poisson arrivals at this rate (queries/s)"),
    "server_max_p99_ms": (float, "Server: the p99 bound a valid run must keep (ms)"),
    "min_server_peak_qps": (float, "Server: the highest valid rate LoadGen finds must reach this (queries/s)"),
    "min_offline_qps": (float, "Offline: drawings per second, all queued at once"),
    "offline_batch_size": (int, "Offline: drawings per model call"),
    # the same service levels in forms that travel: resolved in the run from the model's own batch-1 p50
    # (latency bounds) or the calibration network's calls/s (rates), both measured in the same run
    "single_stream_max_p90_ratio": (float, "SingleStream: p90 bound as a multiple of the model's own batch-1 p50"),
    "server_target_qps_ratio": (float, "Server: the arrival rate as a multiple of the calibration network's calls/s"),
    "server_max_p99_ratio": (float, "Server: the p99 bound as a multiple of the model's own batch-1 p50"),
    "min_server_peak_qps_ratio": (float, "Server: the highest valid rate as a multiple of the calibration calls/s"),
    "min_offline_qps_ratio": (float, "Offline: drawings/s as a multiple of the calibration network's calls/s"),
    "min_duration_ms": (int, "each run lasts at least this long (MLPerf: 600,000)"),
    "min_query_count": (int, "each run issues at least this many queries"),
    "concurrency": (int, "queries the SUT runs at once (default: the model's concurrency option, else 1)"),
    "accuracy": (bool, "also run LoadGen's accuracy mode; its answers must equal the accuracy pass"),
    "answers_under_load": (bool, "MLPerf TEST01: every answer given in a timed run must equal the accuracy pass's"),
    "min_answers_under_load": (int, "answers compared before an all-equal run may pass (default 1,000)"),
    "no_caching": (bool, "MLPerf TEST04: run again with one drawing repeated; >10 % faster means a cache"),
    "seed_robustness": (bool, "MLPerf TEST05: run again with other LoadGen seeds; latency must stay within 5 %"),
    "soak_s": (float, "Soak: hold the Server load (server_target_qps) this long, in windows, trends tested"),
    "soak_windows": (int, "Soak: windows the run is cut into (default 10)"),
    "max_p99_drift": (float, "Soak: how much p99 may rise over the soak, as a share (0.2: 20 %)"),
    "max_memory_growth_mb": (float, "Soak: RSS growth over the soak, the server's where local, else the client's"),
    "load_steps_qps": (list, "Steps: Server runs at each of these rates, e.g. [50, 100, 200, 400]; the knee found"),
    "ramp_qps": (dict, "Steps as a geometric ramp: { from = 50, to = 800, steps = 8 }"),
    "step_duration_ms": (int, "Steps: how long each rate is held (default min_duration_ms)"),
    "knee_p99_factor": (float, "Steps: a step whose p99 exceeds this × the first step's is past the knee (default 3)"),
    "min_knee_qps": (float, "Steps: the knee (highest rate kept up with) must reach this (queries/s)"),
    "max_error_rate": (float, "share of requests that may fail under load (0 to 1; default 0: none may)"),
    "max_error_rate_by_kind": (dict, 'the same by kind, e.g. { "HTTP 503" = 0.001, timeout = 0 }'),
}
# a travelling service level → (the absolute key it resolves to, what it multiplies)
RELATIVE_LOADGEN: dict[str, tuple[str, str]] = {
    "single_stream_max_p90_ratio": ("single_stream_max_p90_ms", "p50"),
    "server_target_qps_ratio": ("server_target_qps", "calibration"),
    "server_max_p99_ratio": ("server_max_p99_ms", "p50"),
    "min_server_peak_qps_ratio": ("min_server_peak_qps", "calibration"),
    "min_offline_qps_ratio": ("min_offline_qps", "calibration"),
}
DEFAULT_SERVER_P99_MS = 10.0  # the Server bound when a table gives a target rate but no server_max_p99_ms
LOADGEN_DEFAULTS = {"multi_stream_samples_per_query": 8, "offline_batch_size": 64, "min_duration_ms": 2000,
                    "min_query_count": 1024, "accuracy": True}


def _check_loadgen_table(table: dict, where: str) -> dict:
    """Validate ``[model.loadgen]``: known keys, right types, a Server bound with its target."""
    for key, value in table.items():
        if key not in LOADGEN_SETTINGS:
            raise SketchBenchError(where, f"unknown key '{key}'", f"known keys: {', '.join(LOADGEN_SETTINGS)}")
        kind = LOADGEN_SETTINGS[key][0]
        if key == "load_steps_qps":
            if not isinstance(value, list) or len(value) < 2 or not all(
                    isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in value):
                raise SketchBenchError(where, "'load_steps_qps' must list at least two positive rates",
                                       "e.g. load_steps_qps = [50, 100, 200, 400]")
        elif key == "ramp_qps":
            if not isinstance(value, dict) or set(value) != {"from", "to", "steps"} or not (
                    0 < value["from"] < value["to"] and isinstance(value["steps"], int) and value["steps"] >= 2):
                raise SketchBenchError(where, "'ramp_qps' must be { from = <rate>, to = <higher rate>, "
                                       "steps = <n ≥ 2> }", "e.g. ramp_qps = { from = 50, to = 800, steps = 8 }")
        elif key.startswith("max_error_rate"):
            rates = value if kind is dict else {"": value}
            if not isinstance(rates, dict) or not all(
                    isinstance(r, int | float) and not isinstance(r, bool) and 0 <= r < 1 for r in rates.values()):
                raise SketchBenchError(where, f"'{key}' must be {'a table of ' if kind is dict else ''}a share of "
                                       "requests from 0 to 1", f"e.g. {key} = "
                                       + ('{ "HTTP 503" = 0.001 }' if kind is dict else "0.001 (0.1 %)"))
        elif kind is bool:
            if not isinstance(value, bool):
                raise SketchBenchError(where, f"'{key}' must be true or false", f"e.g. {key} = true")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or (
                kind is int and not isinstance(value, int)):
            raise SketchBenchError(where, f"'{key}' must be a positive {'integer' if kind is int else 'number'}",
                                   f"got {value!r}")
    for ratio_key, (absolute_key, _) in RELATIVE_LOADGEN.items():
        if ratio_key in table and absolute_key in table:
            raise SketchBenchError(where, f"both {ratio_key} and {absolute_key}", "keep one form of each gate")
    given = {RELATIVE_LOADGEN.get(key, (key,))[0] for key in table}
    if "load_steps_qps" in table and "ramp_qps" in table:
        raise SketchBenchError(where, "both load_steps_qps and ramp_qps", "keep one schedule")
    if "soak_s" in table and "server_target_qps" not in given:
        raise SketchBenchError(where, "soak_s needs server_target_qps", "e.g. server_target_qps = 100 — the load the "
                               "soak holds")
    if "server_max_p99_ms" in given and not given & {"server_target_qps", "min_server_peak_qps", "load_steps_qps",
                                                      "ramp_qps"}:
        raise SketchBenchError(where, "server_max_p99_ms needs server_target_qps (or min_server_peak_qps)",
                               "e.g. server_target_qps = 200 — the load at which the p99 bound must hold")
    return table


@dataclass(frozen=True)
class ParityLimit:
    """``min_agreement = { with = "cnn", min = 0.99 }`` — an export must follow its source model."""

    key: str
    with_model: str
    bound: float


@dataclass(frozen=True)
class RatioLimit:
    """``max_latency_ratio = { reference = "onnx", max = 10.0, batch = 1 }`` — one relative speed limit."""

    key: str
    reference: str
    bound: float
    batch: int | None = None  # None: batch 1 for latency, the largest batch size for throughput


@dataclass
class Limits:
    """The resolved limits of one model on one device profile."""

    model: str
    values: dict[str, float] = field(default_factory=dict)
    category_accuracy: dict[str, float] = field(default_factory=dict)
    source: str = ""
    ratios: list[RatioLimit] = field(default_factory=list)
    parity: list[ParityLimit] = field(default_factory=list)
    loadgen: dict[str, float | int | bool] = field(default_factory=dict)  # [model.loadgen], see LOADGEN_SETTINGS

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def category_limit(self, category: str) -> float | None:
        return self.category_accuracy.get(category, self.values.get("min_category_accuracy"))


@dataclass
class SketchConfig:
    """The whole parsed config file."""

    path: str
    model_limits: dict[str, dict] = field(default_factory=dict)  # name → raw validated table
    models: dict[str, dict] = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)  # [history]: what sketchbench history check follows
    settings: dict[str, Any] = field(default_factory=dict)

    def has_limits(self, model: str) -> bool:
        """Does the config gate this model at all? (A model without limits is measured, not gated.)"""
        return bool(self.model_limits.get(model))

    def limits_for(self, model: str, profile: str | None) -> Limits:
        """Base limits of ``model`` with its ``profile.<name>`` overrides applied."""
        table = self.model_limits.get(model, {})
        values = {k: v for k, v in table.items() if k in LIMITS}
        categories = dict(table.get("category_accuracy", {}))
        ratios = {k: v for k, v in table.items() if k in RATIO_LIMITS}
        parity = {k: v for k, v in table.items() if k in PARITY_LIMITS}
        source = f"{self.path} [{model}]" if table else "no limits configured"
        override = table.get("profile", {}).get(profile or "", {})
        if override:
            values.update({k: v for k, v in override.items() if k in LIMITS})
            categories.update(override.get("category_accuracy", {}))
            ratios.update({k: v for k, v in override.items() if k in RATIO_LIMITS})
            parity.update({k: v for k, v in override.items() if k in PARITY_LIMITS})
            source = f"{self.path} [{model}.profile.{profile}]"
        loadgen = {**table.get("loadgen", {}), **override.get("loadgen", {})}
        return Limits(model, values, categories, source, [limit for group in ratios.values() for limit in group],
                      [limit for group in parity.values() for limit in group], loadgen)

    def category_limits(self) -> list[tuple[str, str]]:
        """(table, category) of every per-category limit: checked against the dataset's categories."""
        found = []
        for model, table in self.model_limits.items():
            overrides = table.get("profile", {}).items()
            scopes = [(f"[{model}.category_accuracy]", table),
                      *((f"[{model}.profile.{name}.category_accuracy]", t) for name, t in overrides)]
            found += [(where, category) for where, scope in scopes for category in scope.get("category_accuracy", {})]
        return found

    def check_categories(self, categories: list[str], known: Collection[str] = ()) -> list[str]:
        """A misspelt category would silently gate nothing: refuse it, naming the dataset's categories.
        A category of ``known`` (the bundled split's) that this dataset lacks is not a typo — the shipped
        limits on someone else's data: returned, sorted, so the run can say they are not applied."""
        absent = set()
        for where, category in self.category_limits():
            if category in categories:
                continue
            if category not in known:
                raise SketchBenchError(f"{self.path} {where}", f"'{category}' is not a category of the dataset",
                                       f"use one of {', '.join(categories)}")
            absent.add(category)
        return sorted(absent)

    def references(self) -> set[str]:
        """Every model or workload named as a reference of a relative or parity limit."""
        found = set()
        for table in self.model_limits.values():
            for scope in (table, *table.get("profile", {}).values()):
                found |= {limit.reference for key in RATIO_LIMITS for limit in scope.get(key, [])}
                found |= {limit.with_model for key in PARITY_LIMITS for limit in scope.get(key, [])}
        return found


def _ratio_limits(key: str, value, where: str) -> list[RatioLimit]:
    """A relative limit is one table or a list of tables (one per batch size)."""
    bound_key = RATIO_LIMITS[key][0]
    example = f'{key} = {{ reference = "onnx", {bound_key} = {10.0 if bound_key == "max" else 0.25} }}'
    tables = value if isinstance(value, list) else [value]
    limits = []
    for table in tables:
        if not isinstance(table, dict) or set(table) - {"reference", bound_key, "batch"} or \
                not isinstance(table.get("reference"), str) or bound_key not in table:
            raise SketchBenchError(where, f"'{key}' must be a table with reference and {bound_key} (batch optional)",
                                   f"e.g. {example}")
        bound, batch = table[bound_key], table.get("batch")
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not bound > 0:
            raise SketchBenchError(where, f"'{key}.{bound_key}' must be a positive number", f"e.g. {example}")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise SketchBenchError(where, f"'{key}.batch' must be a positive integer", "e.g. batch = 64")
        limits.append(RatioLimit(key, table["reference"], float(bound), batch))
    return limits


def _parity_limits(key: str, value, where: str) -> list[ParityLimit]:
    """One table or a list of tables (one per model followed)."""
    bound_key = PARITY_LIMITS[key][0]
    example = f'{key} = {{ with = "cnn", {bound_key} = {0.99 if bound_key == "min" else 1e-4} }}'
    limits = []
    for table in value if isinstance(value, list) else [value]:
        if not isinstance(table, dict) or set(table) != {"with", bound_key} or not isinstance(table["with"], str):
            raise SketchBenchError(where, f"'{key}' must be a table with 'with' (a model name) and {bound_key}",
                                   f"e.g. {example}")
        bound = table[bound_key]
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 <= bound <= 1:
            raise SketchBenchError(where, f"'{key}.{bound_key}' must be a number in [0, 1], got {bound!r}",
                                   f"e.g. {example}")
        if table["with"] == CALIBRATION:
            raise SketchBenchError(where, f"'{key}' cannot follow the calibration workload (it classifies nothing)",
                                   "name the model this one was exported or converted from")
        limits.append(ParityLimit(key, table["with"], float(bound)))
    return limits


def _check_limits_table(table: dict, where: str, allow_profiles: bool) -> dict:
    allowed = (set(LIMITS) | set(RATIO_LIMITS) | set(PARITY_LIMITS) | {"category_accuracy", "loadgen"}
               | ({"profile"} if allow_profiles else set()))
    for key, value in table.items():
        if key not in allowed:
            raise SketchBenchError(where, f"unknown key '{key}'", f"known keys: {', '.join(sorted(allowed))}")
        if key in RATIO_LIMITS:
            table[key] = _ratio_limits(key, value, where)
        elif key in PARITY_LIMITS:
            table[key] = _parity_limits(key, value, where)
        elif key in LIMITS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SketchBenchError(where, f"'{key}' must be a number, got {type(value).__name__} {value!r}",
                                       f"e.g. {key} = 0.9")
            table[key] = float(value)
            if value < 0 or ((key in FRACTIONS or (key.startswith("min_") and "accuracy" in key)) and value > 1):
                raise SketchBenchError(where, f"'{key}' = {value} is out of range",
                                       "accuracies, rates and shares are fractions in [0, 1]; other limits are "
                                       "positive")
        elif key == "loadgen":
            if not isinstance(value, dict):
                raise SketchBenchError(where, "'loadgen' must be a table of scenario settings and gates",
                                       f"use [{where.split('[')[-1].rstrip(']')}.loadgen]")
            table[key] = _check_loadgen_table(dict(value), f"{where[:-1]}.loadgen]")
        elif key == "category_accuracy":
            if not isinstance(value, dict):
                raise SketchBenchError(where, "'category_accuracy' must be a table of category = number",
                                       f"use [{where.split('[')[-1].rstrip(']')}.category_accuracy]")
            for category, limit in value.items():
                if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit <= 1:
                    raise SketchBenchError(f"{where}.category_accuracy", f"'{category}' must be in [0, 1]",
                                           f'e.g. "{category}" = 0.8')
                value[category] = float(limit)
        elif key == "profile":
            if not isinstance(value, dict):
                raise SketchBenchError(where, "'profile' must hold tables", "use [model.profile.cpu]")
            for name, override in value.items():
                if not isinstance(override, dict):
                    raise SketchBenchError(f"{where}.profile", f"'{name}' must be a table", "")
                _check_limits_table(override, f"{where[:-1]}.profile.{name}]", allow_profiles=False)
    return table


def load_config(path: Path | None, known_models: list[str] | None = None,
                extra_models: set[str] | None = None) -> SketchConfig:
    """Parse and validate the config; a missing default file is simply an empty config."""
    if path is None or not Path(path).exists():
        return SketchConfig(str(path or ""))
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SketchBenchError(str(path), f"malformed TOML ({exc})", "fix the syntax at the position shown") from None
    config = SketchConfig(str(path))
    config.models = raw.pop("models", {}) or {}
    config.profiles = raw.pop("profiles", {}) or {}
    config.baseline = raw.pop("baseline", {}) or {}
    config.history = raw.pop("history", {}) or {}
    config.settings = raw.pop("sketchbench", {}) or {}
    names = set(known_models or []) | set(config.models) | set(extra_models or [])
    for model, table in raw.items():
        where = f"{path} [{model}]"
        if not isinstance(table, dict):
            raise SketchBenchError(str(path), f"top-level key '{model}' is not a table",
                                   f"put limits under [{model}] for a model, or remove it")
        if known_models is not None and model not in names:
            raise SketchBenchError(where, f"unknown model name '{model}'",
                                   f"known models: {', '.join(sorted(names))}; register it under [models.{model}]")
        config.model_limits[model] = _check_limits_table(dict(table), where, allow_profiles=True)
    profiles = set(BUILTIN_PROFILES) | set(config.profiles)
    for model, table in config.model_limits.items():
        for name in set(table.get("profile", {})) - profiles:
            raise SketchBenchError(f"{path} [{model}.profile.{name}]", f"unknown device profile '{name}'",
                                   f"use one of {', '.join(sorted(profiles))}, or define it under [profiles.{name}]")
    if known_models is not None:
        unknown = sorted(config.references() - names - {CALIBRATION})
        if unknown:
            raise SketchBenchError(str(path), f"unknown reference model(s) {', '.join(unknown)} in a relative "
                                   "or parity limit",
                                   f"name a registered model ({', '.join(sorted(names))}) or \"{CALIBRATION}\"")
    return config
