"""Which Keras rebuilds a layers model. Keras 3 reads Keras 3 files; most published files (TF.js layers models
converted by tensorflowjs, legacy ``.h5``) carry a Keras 2 config (``"keras_version": "2.2.4-tf"``) that Keras 3
refuses or misreads, so those go to ``tf-keras``, Keras 2 for current TensorFlow, made for exactly these configs.

Either way a config is read, never run: layers that carry Python code (``Lambda`` with marshalled bytecode,
``TFOpLambda`` calling any TensorFlow function by name) are refused before Keras sees the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_sketchbench.errors import SketchBenchError

CODE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})


def is_keras2(version: str | None) -> bool:
    """True for a Keras 1/2 version string ("2.2.4-tf", "2.15.0"): what tf-keras reads, not Keras 3."""
    major = (version or "").split(".", 1)[0]
    return major.isdigit() and int(major) < 3


def _h5_attribute(path: Path, name: str) -> str | None:
    """A text attribute of an HDF5 file's root (None when absent or when the file is not HDF5: the loader names
    that problem)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            value = handle.attrs.get(name)
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def h5_keras_version(path: Path) -> str | None:
    """The ``keras_version`` a Keras ``.h5`` file was written by (None when the file does not say)."""
    return _h5_attribute(path, "keras_version")


def h5_model_config(path: Path) -> dict | None:
    config = _h5_attribute(path, "model_config")
    return None if config is None else json.loads(config)


def refuse_code_layers(config: Any, where: str) -> None:
    """A one-line error for the first layer (at any depth) whose config carries code."""
    if isinstance(config, dict):
        if config.get("class_name") in CODE_LAYERS:
            name = (config.get("config") or {}).get("name", "?")
            raise SketchBenchError(where, f"layer '{name}' is a {config['class_name']}: it carries code to run",
                                   "a model file may not run code; rebuild it without that layer or export to ONNX")
        for value in config.values():
            refuse_code_layers(value, where)
    elif isinstance(config, list):
        for value in config:
            refuse_code_layers(value, where)


def import_tf_keras(where: str, version: str | None):
    try:
        import tf_keras
    except ImportError:
        raise SketchBenchError(where, f"a Keras {version} model needs tf-keras (Keras 2) to be rebuilt",
                               'pip install "pytest-sketchbench[keras]" (it brings tf-keras)') from None
    return tf_keras


def rebuilt_with(version: str | None) -> str:
    """What rebuilt the model, for ``model_info`` and the runtime name: 'tf-keras 2.21.0' or 'keras 3.15.1'."""
    if is_keras2(version):
        import tf_keras

        return f"tf-keras {tf_keras.__version__}"
    import keras

    return f"keras {keras.__version__}"
