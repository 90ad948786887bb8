"""TF.js in a real browser: the shipped mobilenet in headless Chromium (Selenium, Debian's chromium-driver, TF.js
vendored from the npm registry by ``scripts/vendor_tfjs.py``), its answers against TensorFlow's in Python, a
backend that silently fell back, and a thousand calls that must not leak tensors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, run_options
from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.models.browser_model import BrowserModel

pytestmark = pytest.mark.slow
MOBILENET = REPO / "models" / "mobilenet" / "model.json"


@pytest.fixture
def browser_model():
    """A loaded browser model (torn down after), or a skip naming the setup command."""
    made = []

    def make(**config):
        plugin = BrowserModel("browser", {"path": str(MOBILENET), **config})
        try:
            plugin.import_runtime()
        except ModelUnavailable as exc:
            pytest.skip(str(exc))
        made.append(plugin)
        plugin.load()
        return plugin

    yield make
    for plugin in made:
        plugin.release()


def test_mobilenet_in_chromium_gives_tensorflows_answers(browser_model, tmp_path):
    browser_model(backend="wasm").release()  # skips here without a browser, TF.js or selenium
    pytest.importorskip("tensorflow", reason="the answers compared with are TensorFlow's ('.[keras]')")
    config = tmp_path / "t.toml"
    config.write_text(textwrap.dedent("""
        [mobilenet-wasm]
        min_accuracy = 0.8
        min_agreement = { with = "mobilenet", min = 0.99 }
        max_probability_diff = { with = "mobilenet", max = 1e-4 }
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_accuracy.py", *run_options(10),
                           "--sketch-models=mobilenet,mobilenet-wasm", f"--sketch-config={config}",
                           "-k", "test_accuracy[ or parity"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "parity with mobilenet: agreement 1.0000 (0 of 230 drawings differ)" in done.stdout
    assert "TF.js 4.22.0 wasm in Chromium " in done.stdout and "ready in " in done.stdout


@pytest.mark.slow  # Chromium and TensorFlow each score 230 drawings with a 345-class model
def test_a_published_layers_model_in_chromium_gives_tf_keras_answers(browser_model, tmp_path):
    """The published Keras 2.2.4-era TF.js layers model (tests/data/wild) through tf.loadLayersModel in the page,
    against the same file rebuilt by tf-keras in Python."""
    browser_model(backend="wasm").release()  # skips here without a browser, TF.js or selenium
    pytest.importorskip("tf_keras", reason="the answers compared with are tf-keras's ('.[keras]')")
    folder = REPO / "tests" / "data" / "wild" / "doodlejs"
    config = tmp_path / "t.toml"
    config.write_text(textwrap.dedent(f"""
        [models.doodle]
        path = "{folder / "model.json"}"
        categories = "{folder / "class_names.txt"}"
        [models.doodle-wasm]
        runtime = "tfjs-browser"
        backend = "wasm"
        path = "{folder / "model.json"}"
        categories = "{folder / "class_names.txt"}"
        [doodle-wasm]
        min_agreement = {{ with = "doodle", min = 0.99 }}
        max_probability_diff = {{ with = "doodle", max = 1e-4 }}
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_accuracy.py", *run_options(10),
                           "--sketch-models=doodle,doodle-wasm", f"--sketch-config={config}",
                           "-k", "parity"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "parity with doodle: agreement 1.0000 (0 of 230 drawings differ)" in done.stdout
    assert "TF.js 4.22.0 wasm in Chromium " in done.stdout


def test_a_backend_that_fell_back_is_a_one_line_error(browser_model):
    flags = ["--disable-gpu", "--disable-software-rasterizer", "--disable-webgl", "--disable-webgl2",
             "--disable-3d-apis"]  # no WebGL at all: TF.js's webgl backend cannot start
    with pytest.raises(SketchBenchError, match=r"backend 'webgl' was asked for but TF.js runs on 'cpu'.* — enable "
                                               r"WebGL/WASM in Chromium, or set allow_fallback = true"):
        browser_model(backend="webgl", chromium_flags=flags)
    measured = browser_model(backend="webgl", chromium_flags=flags, allow_fallback=True)  # measured as what it is
    assert measured.extra_results()["backend"] == "cpu" and measured.device == "browser:cpu"


def test_a_thousand_calls_leave_the_tensor_count_flat(browser_model, bundled):
    plugin = browser_model(backend="wasm")
    prepared = plugin.prepare(bundled.images[:1])
    for _ in range(1000):
        plugin.infer(prepared)
    figures = plugin.extra_results()
    assert figures["in_page"]["1"]["calls"] == 1000
    assert figures["num_tensors_first"] == figures["num_tensors_last"], figures
    assert figures["chromium_memory_mb"] > figures["tensor_bytes"] / 2**20 > 1  # the browser holds the weights
    low, high = figures["in_page"]["1"]["p50_ci_ms"]
    assert low <= figures["in_page"]["1"]["p50_ms"] <= high, figures
    model_s, calibration_s = plugin.time_beside_calibration(prepared, 60)  # the TF.js network, in the same page
    assert len(model_s) == len(calibration_s) == 60 and np.median(model_s) > np.median(calibration_s)
    with_calibration = plugin.extra_results()["num_tensors_last"]  # + the network's weights, loaded once
    plugin.time_beside_calibration(prepared, 60)
    assert plugin.extra_results()["num_tensors_last"] == with_calibration  # interleaving leaks nothing
