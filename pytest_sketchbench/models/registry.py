"""Where model names come from: built-ins, ``@register_model``, entry points, config tables.

Runtime classes are named as ``"module:Class"`` strings and imported only when a model
is actually loaded, so selecting ``onnx`` never imports TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pytest_sketchbench.errors import SketchBenchError

ENTRY_POINT_GROUP = "sketchbench.models"

@dataclass(frozen=True)
class Runtime:
    """One runtime: its plugin class ("module:Class", imported only when a model of it loads), the model file
    suffixes that select it, and the pip extra that installs what it imports."""

    plugin: str
    suffixes: tuple[str, ...]
    extra: str
    module: str  # what it imports: looked up (never imported) to say early that it is missing

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


_MODELS = "pytest_sketchbench.models"
RUNTIMES: dict[str, Runtime] = {
    "keras": Runtime(f"{_MODELS}.keras_model:KerasModel", (".h5", ".keras", ".hdf5"), "keras", "tensorflow"),
    "onnx": Runtime(f"{_MODELS}.onnx_model:OnnxModel", (".onnx",), "onnx", "onnxruntime"),
    "torch": Runtime(f"{_MODELS}.torch_model:TorchScriptModel", (".pt", ".pth", ".torchscript", ".ts"), "torch",
                     "torch"),
    "torch-export": Runtime(f"{_MODELS}.torch_model:TorchExportModel", (".pt2",), "torch", "torch"),
    # a folder holding saved_model.pb; TF.js model.json files: read to tell a graph model from a layers model
    "savedmodel": Runtime(f"{_MODELS}.keras_model:SavedModel", (), "keras", "tensorflow"),
    "tfjs": Runtime(f"{_MODELS}.tfjs_model:TfjsGraphModel", (), "keras", "tensorflow"),
    "tfjs-layers": Runtime(f"{_MODELS}.tfjs_model:TfjsLayersModel", (), "keras", "tensorflow"),
    "gemini": Runtime(f"{_MODELS}.gemini_model:GeminiModel", (), "gemini", "google.genai"),
    "v2": Runtime(f"{_MODELS}.v2_model:OpenInferenceModel", (), "serve", "httpx"),
    "tflite": Runtime(f"{_MODELS}.tflite_model:LiteRTModel", (".tflite",), "litert", "ai_edge_litert"),
    "tfjs-browser": Runtime(f"{_MODELS}.browser_model:BrowserModel", (), "browser", "selenium"),
}


# Built-in names → (runtime, file relative to the models folder, extra options).
BUILTINS: dict[str, tuple[str, str | None, dict]] = {
    "cnn": ("keras", "cnn.h5", {}),
    "mobilenet": ("tfjs", "mobilenet/model.json", {}),
    "onnx": ("onnx", "cnn.onnx", {}),
    "onnx-int8": ("onnx", "cnn-int8.onnx", {}),
    "torch": ("torch", "cnn.pt", {}),
    "tflite": ("tflite", "cnn.tflite", {}),
    "tflite-int8": ("tflite", "cnn-int8.tflite", {}),
    "mobilenet-browser": ("tfjs-browser", "mobilenet/model.json", {"backend": "webgl"}),  # needs Chromium
    "mobilenet-wasm": ("tfjs-browser", "mobilenet/model.json", {"backend": "wasm"}),
    "gemini": ("gemini", None, {}),
}


@dataclass
class ModelSpec:
    """How to build one named model: a plugin class (or its import path) and its config."""

    name: str
    plugin: Any  # a ModelPlugin subclass or "module:Class"
    config: dict = field(default_factory=dict)
    origin: str = "builtin"

    def plugin_class(self):
        if not isinstance(self.plugin, str):
            return self.plugin
        module_name, _, class_name = self.plugin.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, class_name)
        except ModuleNotFoundError as exc:
            raise SketchBenchError(f"model '{self.name}'", f"cannot import {module_name} ({exc})",
                                   self.install_hint()) from None
        except AttributeError:
            raise SketchBenchError(f"model '{self.name}'", f"{module_name} has no class {class_name}",
                                   "check the 'plugin' value (module:Class)") from None

    def runtime_row(self) -> Runtime | None:
        return next((r for r in RUNTIMES.values() if r.plugin == self.plugin), None)

    def install_hint(self) -> str:
        """How to install what this model's runtime imports (its row's pip extra)."""
        row = self.runtime_row()
        return f"pip install 'pytest-sketchbench[{row.extra}]'" if row else "install the module that provides it"

    def create(self):
        """Instantiate the plugin (validates its config; does not load the model yet)."""
        return self.plugin_class()(self.name, self.config)


_DECORATED: dict[str, ModelSpec] = {}


def register_model(name: str, **config: Any):
    """Class decorator: ``@register_model("mine", path="models/mine.onnx")`` adds a model name.

    A relative ``path`` is relative to the file that holds the decorated class (usually a
    ``conftest.py``) — the same rule as paths in the config file, which are relative to it.
    """

    def decorate(cls):
        options = dict(config)
        if options.get("path"):
            path = Path(str(options["path"])).expanduser()
            module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
            if not path.is_absolute() and module_file:
                path = Path(module_file).resolve().parent / path
            options["path"] = str(path)
        _DECORATED[name] = ModelSpec(name, cls, options, origin=f"@register_model in {cls.__module__}")
        return cls

    return decorate


def forget_decorated() -> None:
    _DECORATED.clear()


def runtime_for_path(path: str | Path) -> str:
    """Pick a runtime from a model file's name."""
    path = Path(path)
    suffix = path.suffix.lower()
    for name, runtime in RUNTIMES.items():
        if suffix in runtime.suffixes:
            return name
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "savedmodel"
    if path.name == "model.json" or (path.is_dir() and (path / "model.json").exists()):
        from pytest_sketchbench.models.tfjs_format import FORMATS, model_json_format

        return FORMATS[model_json_format(path)]
    raise SketchBenchError(str(path), f"cannot tell the runtime from '{path.name}'",
                           "use .h5/.keras, .onnx, .pt, .pt2, .tflite, a SavedModel folder or a TF.js model.json, "
                           "or set runtime = \"...\"")


def _from_table(name: str, table: dict, base: Path, where: str) -> ModelSpec:
    config = dict(table)
    for key in ("path", "categories"):  # a file named in the config is relative to the config
        if isinstance(config.get(key), str):
            path = Path(config[key])
            config[key] = str(path if path.is_absolute() else base / path)
    plugin = config.pop("plugin", None)
    runtime = config.pop("runtime", None)
    if plugin is None:
        if runtime is None:
            if "path" not in config:
                raise SketchBenchError(f"{where} [models.{name}]", "needs 'path', 'runtime' or 'plugin'",
                                       'e.g. path = "models/mine.onnx" or plugin = "pkg.module:Class"')
            runtime = runtime_for_path(config["path"])
        if runtime not in RUNTIMES:
            raise SketchBenchError(f"{where} [models.{name}]", f"unknown runtime '{runtime}'",
                                   f"use one of {', '.join(RUNTIMES)}")
        plugin = RUNTIMES[runtime].plugin
    return ModelSpec(name, plugin, config, origin=where)


class Registry:
    """All model names a run can select, resolved once per session."""

    def __init__(self, models_dir: Path, config_models: dict | None = None, config_path: str = "config",
                 config_base: Path | None = None):
        self.specs: dict[str, ModelSpec] = {}
        for name, (runtime, relative, options) in BUILTINS.items():
            config = dict(options)
            if relative:
                config["path"] = str(models_dir / relative)
            self.specs[name] = ModelSpec(name, RUNTIMES[runtime].plugin, config)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            self.specs[entry.name] = ModelSpec(entry.name, _EntryPointPlugin(entry), {},
                                               origin=f"entry point {entry.value}")
        self.specs.update(_DECORATED)
        base = config_base or models_dir.parent
        for name, table in (config_models or {}).items():
            if not isinstance(table, dict):
                raise SketchBenchError(f"{config_path} [models.{name}]", "must be a table",
                                       'e.g. [models.mine] with path = "..."')
            if name in self.specs and "path" not in table and "plugin" not in table and "runtime" not in table:
                # options for an existing model, e.g. [models.gemini] api_key_env = "..."
                existing = self.specs[name]
                self.specs[name] = ModelSpec(name, existing.plugin, {**existing.config, **table}, existing.origin)
            else:
                self.specs[name] = _from_table(name, table, base, config_path)

    def names(self) -> list[str]:
        return list(self.specs)

    def add_file_model(self, name: str, path: str) -> None:
        """An ad-hoc model from the command line (``v7=exports/cnn_v7.onnx``): the runtime from the file's name,
        measured like any other and gated only if a config table names it."""
        if name in self.specs:
            raise SketchBenchError("--sketch-models", f"'{name}={path}' reuses the name of an existing model",
                                   f"pick a new name, e.g. {name}_file={path}")
        self.specs[name] = ModelSpec(name, RUNTIMES[runtime_for_path(path)].plugin, {"path": path},
                                     origin="--sketch-models")

    def select(self, option: str) -> list[str]:
        """Parse ``--sketch-models``: a comma list or ``all``; unknown names are a usage error."""
        wanted = [n.strip() for n in option.split(",") if n.strip()]
        if not wanted:
            raise SketchBenchError("--sketch-models", f"'{option}' names no model",
                                   f"name one or more of {', '.join(self.names())}, or 'all'")
        if wanted == ["all"]:
            return self.names()
        unknown = [n for n in wanted if n not in self.specs]
        if unknown:
            raise SketchBenchError("--sketch-models", f"unknown model name(s): {', '.join(unknown)}",
                                   f"available: {', '.join(self.names())} (or 'all')")
        return list(dict.fromkeys(wanted))

    def __getitem__(self, name: str) -> ModelSpec:
        return self.specs[name]


class _EntryPointPlugin:
    """Defers importing a third-party plugin until its model is used."""

    def __init__(self, entry):
        self.entry = entry

    def __call__(self, name: str, config: dict):
        cls = self.entry.load()
        return cls(name, self._merged(cls, config))

    def stage_deadline_s(self, config: dict) -> float:
        cls = self.entry.load()
        return cls.stage_deadline_s(self._merged(cls, config))

    @property
    def stage_timeout_option(self) -> str:
        return self.entry.load().stage_timeout_option

    @staticmethod
    def _merged(cls, config: dict) -> dict:
        return {**getattr(cls, "default_config", {}), **config}
