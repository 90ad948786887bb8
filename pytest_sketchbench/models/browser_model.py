"""``runtime = "tfjs-browser"``: a TF.js model measured where it runs — TensorFlow.js in headless Chromium.

In a player's browser, WebGL shader compilation, WASM start-up and texture uploads decide what the user waits
for; a TF.js model run in TensorFlow inside Python says nothing about that. This plugin serves the model folder,
the vendored ``@tensorflow/tfjs`` (from the npm registry at install time: ``python scripts/vendor_tfjs.py``;
never a CDN at run time) and a small page from 127.0.0.1, drives Chromium with Selenium (Debian's
``chromium-driver``) and loads the model with ``tf.loadGraphModel`` on the requested ``backend`` (``webgl``,
``wasm`` or ``cpu``). Drawings are prepared in Python (as for every plugin) and sent as float32 bytes; the page
times each call with ``performance.now()`` around ``predict`` + ``dataSync`` (the GPU or worker pipeline really
drained) and returns the scores. A backend that fell back (WebGL unavailable → CPU) is an error unless
``allow_fallback = true``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin
from pytest_sketchbench.models.keras_versions import refuse_code_layers
from pytest_sketchbench.stats import percentile_ci

TFJS_VERSION = "4.22.0"
VENDOR = Path(os.environ.get("SKETCH_TFJS_DIR") or Path(__file__).resolve().parents[2] / "vendor" / "tfjs")
CALIBRATION_TFJS = Path(__file__).resolve().parents[1] / "calibration" / "tfjs"  # scripts/build_calibration_tfjs.py
BACKENDS = ("webgl", "wasm", "cpu")
SETUP = "python scripts/vendor_tfjs.py (npm), and apt-get install chromium chromium-driver"

PAGE_HTML = """<!doctype html><meta charset="utf-8"><title>sketchbench</title>
<script src="/tfjs/@tensorflow/tfjs/dist/tf.min.js"></script>
<script src="/tfjs/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js"></script>
<script>
tf.wasm.setWasmPaths('/tfjs/@tensorflow/tfjs-backend-wasm/dist/');
function toBase64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
function renderer() {
  try {
    const canvas = document.createElement('canvas');
    const gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    return gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
  } catch (e) { return null; }
}
window.sketch = {
  async load(backend, url, format) {
    const t0 = performance.now();
    let ok = false;
    try { ok = await tf.setBackend(backend); await tf.ready(); } catch (e) { ok = false; }
    if (!ok) { await tf.setBackend('cpu'); await tf.ready(); }
    const t1 = performance.now();
    this.model = format === 'layers-model' ? await tf.loadLayersModel(url) : await tf.loadGraphModel(url);
    const t2 = performance.now();
    const shape = this.model.inputs[0].shape.map(d => (d == null || d < 0) ? 1 : d);
    const warm = tf.tidy(() => this.model.predict(tf.zeros(shape)));
    warm.dataSync(); warm.dispose();
    const t3 = performance.now();
    return {backend: tf.getBackend(), backend_init_ms: t1 - t0, download_parse_ms: t2 - t1,
            first_predict_ms: t3 - t2, renderer: renderer(), tfjs: tf.version.tfjs,
            input_shape: this.model.inputs[0].shape,
            threads: backend === 'wasm' ? (tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'yes' : 'no') : null,
            simd: backend === 'wasm' ? tf.env().getBool('WASM_HAS_SIMD_SUPPORT') : null,
            num_tensors: tf.memory().numTensors};
  },
  async loadCalibration(url) {
    this.calibration = await tf.loadGraphModel(url);
    const warm = tf.tidy(() => this.calibration.predict(tf.zeros([1, 28, 28, 1])));
    warm.dataSync(); warm.dispose();
  },
  interleaved(b64, shape, rounds, first) {
    // the model and the calibration network, one call each per round, in alternating order: what slows one
    // slows both, and the ratio of their times travels between machines as the Python models' ratios do
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const input = tf.tensor(new Float32Array(bytes.buffer), shape);
    const yardstick = tf.zeros([shape[0], 28, 28, 1]);
    const call = (model, x) => { const t0 = performance.now(); const out = model.predict(x); out.dataSync();
                                 out.dispose(); return performance.now() - t0; };
    const model = [], calibration = [];
    for (let i = 0; i < rounds; i++) {
      if ((i + first) % 2) { calibration.push(call(this.calibration, yardstick)); model.push(call(this.model, input)); }
      else { model.push(call(this.model, input)); calibration.push(call(this.calibration, yardstick)); }
    }
    input.dispose(); yardstick.dispose();
    return {model: model, calibration: calibration, num_tensors: tf.memory().numTensors};
  },
  predict(b64, shape) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const input = new Float32Array(bytes.buffer);
    const t0 = performance.now();
    const out = tf.tidy(() => this.model.predict(tf.tensor(input, shape)));
    const data = out.dataSync();
    const outShape = out.shape;
    out.dispose();
    const ms = performance.now() - t0;
    return {out: toBase64(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), shape: outShape, ms: ms,
            num_tensors: tf.memory().numTensors, num_bytes: tf.memory().numBytes};
  }
};
</script>"""


class _Handler(SimpleHTTPRequestHandler):
    """Static files from the model folder (``/model/``), the vendored packages (``/tfjs/``) and the page; with
    cross-origin isolation so WASM may use threads."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript", ".json": "application/json", ".bin": "application/octet-stream"}

    def __init__(self, *args, roots: dict[str, Path], page: bytes, **kwargs):
        self.roots, self.page = roots, page
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(self.page)))
            self.end_headers()
            self.wfile.write(self.page)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        """Only files under the two roots; anything else (``..`` included) is a 404."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, root in self.roots.items():
            if path.startswith(prefix):
                target = (root / path[len(prefix):]).resolve()
                if target.is_relative_to(root.resolve()):
                    return str(target)
        return str(Path(tempfile.gettempdir()) / "sketchbench-no-such-file")


def in_page_figures(times_ms: list[float]) -> dict:
    """Calls, p50 and p99 of the in-page times, each percentile with its distribution-free 95 % interval (None
    where too few calls bound it)."""
    figures: dict = {"calls": len(times_ms)}
    for pct in (50, 99):
        interval = percentile_ci(times_ms, pct)
        figures[f"p{pct}_ms"] = float(np.percentile(times_ms, pct))
        figures[f"p{pct}_ci_ms"] = None if interval is None else list(interval)
    return figures


class BrowserModel(ModelPlugin):
    runtime = "tfjs-browser"
    options = ("backend", "allow_fallback", "chromium_flags", "chromium", "chromedriver")
    results_key = "browser"
    times_calibration_itself = (CALIBRATION_TFJS / "model.json").exists()

    @classmethod
    def validate_config(cls, config: dict) -> None:
        super().validate_config(config)
        if config.get("backend", "webgl") not in BACKENDS:
            raise SketchBenchError(f"model config ({config.get('path')})", f"backend = {config['backend']!r}",
                                   f"use one of {', '.join(BACKENDS)}")

    @property
    def backend(self) -> str:
        return self.config.get("backend", "webgl")

    def import_runtime(self) -> None:
        """Selenium, a Chromium and its driver, and the vendored TF.js: a missing one skips with the setup."""
        try:
            import selenium  # noqa: F401
        except ImportError:
            raise ModelUnavailable(f"model '{self.name}'", "the browser runtime needs selenium",
                                   "pip install 'pytest-sketchbench[browser]'") from None
        self.chromium = self.config.get("chromium") or shutil.which("chromium") or shutil.which("chromium-browser")
        self.chromedriver = self.config.get("chromedriver") or shutil.which("chromedriver")
        missing = [what for what, found in (("chromium", self.chromium), ("chromedriver", self.chromedriver),
                                            (f"TF.js in {VENDOR}", (VENDOR / "node_modules" / "@tensorflow" / "tfjs"
                                                                     ).is_dir())) if not found]
        if missing:
            raise ModelUnavailable(f"model '{self.name}'", f"no {', '.join(missing)} here", SETUP)

    def load(self) -> None:
        path = self.require_file()
        spec_path = path / "model.json" if path.is_dir() else path
        spec = json.loads(spec_path.read_text())
        self.format = spec.get("format")
        if self.format == "layers-model":  # TF.js rebuilds it in the page; a layer that would carry code is refused
            refuse_code_layers(spec.get("modelTopology") or {}, f"model '{self.name}' ({spec_path})")
        elif self.format != "graph-model" or not (spec.get("signature") or {}).get("inputs"):
            raise SketchBenchError(str(spec_path), "not a TF.js graph model (with an input signature) or layers "
                                   "model", "convert the model with tensorflowjs_converter")
        self.categories = (spec.get("userDefinedMetadata") or {}).get("categories") or self.sidecar_categories()
        self.spec_path = spec_path
        self._serve(spec_path.parent)
        try:
            self._open_page()
        except BaseException:
            self.release()  # no Chromium or server outlives a model that failed to load
            raise

    def _open_page(self) -> None:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = self.chromium
        self._profile = tempfile.mkdtemp(prefix="sketch-chromium-")
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--use-angle=swiftshader", "--enable-unsafe-swiftshader", f"--user-data-dir={self._profile}",
                     *self.config.get("chromium_flags", [])):
            options.add_argument(flag)
        try:
            self.driver = webdriver.Chrome(service=Service(self.chromedriver), options=options)
            self.driver.set_script_timeout(300)
            self.driver.get(f"{self.url}/index.html")
            self.loading = self.driver.execute_async_script(
                "window.sketch.load(arguments[0], arguments[1], arguments[2]).then(arguments[arguments.length - 1])"
                ".catch(e => arguments[arguments.length - 1]({error: String(e)}))", self.backend, "/model/model.json",
                self.format)
        except WebDriverException as exc:
            raise SketchBenchError(f"model '{self.name}'", f"Chromium could not run the page "
                                   f"({str(exc.msg or exc).splitlines()[0][:160]})",
                                   f"check {self.chromium} and {self.chromedriver} match ({SETUP})") from None
        if "error" in self.loading:
            raise SketchBenchError(f"model '{self.name}'", f"TF.js could not load {self.spec_path} in Chromium "
                                   f"({self.loading['error'][:160]})", "is it a TF.js graph model?")
        if self.loading["backend"] != self.backend and not self.config.get("allow_fallback"):
            raise SketchBenchError(f"model '{self.name}'", f"backend '{self.backend}' was asked for but TF.js runs on "
                                   f"'{self.loading['backend']}' (renderer {self.loading.get('renderer')})",
                                   "enable WebGL/WASM in Chromium, or set allow_fallback = true to measure the "
                                   "fallback")
        self.device = f"browser:{self.loading['backend']}"
        self.shape = [None if d is None or int(d) < 0 else int(d) for d in self.loading["input_shape"]]
        if len(self.shape) != 4:
            raise SketchBenchError(str(self.spec_path), f"input shape {self.shape} is not (N, H, W, C)",
                                   "the model must take a batch of images")
        self.input_format = "rgb" if self.shape[-1] == 3 else "grayscale"
        self.page_ms: dict[int, list[float]] = {}
        self.tensors: list[int] = []
        self._calibration_loaded, self._rounds_timed = False, 0

    def _serve(self, model_folder: Path) -> None:
        roots = {"/model/": model_folder, "/tfjs/": VENDOR / "node_modules", "/calibration/": CALIBRATION_TFJS}
        handler = functools.partial(_Handler, roots=roots, page=PAGE_HTML.encode())
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def input_size(self) -> tuple[int, int]:
        return (self.shape[1] or 28, self.shape[2] or 28)

    def prepare(self, images: np.ndarray) -> tuple[str, list[int]]:
        batch = np.ascontiguousarray(super().prepare(images), dtype=np.float32)
        return base64.b64encode(batch.tobytes()).decode(), list(batch.shape)

    def infer(self, prepared: tuple[str, list[int]]) -> np.ndarray:
        encoded, shape = prepared
        answer = self.driver.execute_script("return window.sketch.predict(arguments[0], arguments[1])", encoded, shape)
        self.page_ms.setdefault(shape[0], []).append(float(answer["ms"]))
        self.tensors.append(int(answer["num_tensors"]))
        self.tensor_bytes = int(answer["num_bytes"])
        return np.frombuffer(base64.b64decode(answer["out"]), dtype=np.float32).reshape(answer["shape"])

    def placement(self) -> str:
        return (f"TF.js {self.loading['tfjs']} {self.loading['backend']} in {self.browser_version()} "
                f"(renderer {self.loading.get('renderer') or 'none'})")

    def browser_version(self) -> str:
        return f"Chromium {self.driver.capabilities.get('browserVersion', '?')}"

    def time_beside_calibration(self, prepared: tuple[str, list[int]], rounds: int) -> tuple[list[float], list[float]]:
        """The model and the TF.js calibration network in this page, interleaved (``performance.now()`` around
        each call and its ``dataSync``); the network is loaded on first use."""
        if not self._calibration_loaded:
            self.driver.execute_async_script("window.sketch.loadCalibration(arguments[0])"
                                             ".then(arguments[arguments.length - 1])", "/calibration/model.json")
            self._calibration_loaded = True
        encoded, shape = prepared
        times = self.driver.execute_script("return window.sketch.interleaved(arguments[0], arguments[1], "
                                           "arguments[2], arguments[3])", encoded, shape, rounds, self._rounds_timed)
        self._rounds_timed += rounds
        self.tensors.append(int(times["num_tensors"]))
        return [ms / 1e3 for ms in times["model"]], [ms / 1e3 for ms in times["calibration"]]

    def chromium_memory_mb(self) -> float | None:
        """Memory of Chromium's processes (browser, renderer, GPU, utilities: everything its driver started), where
        the model's tensors live; the summary's "mem" is this Python process. Proportional set size where Linux
        gives it (pages shared between the processes counted once in all), else resident size, which counts them
        in each."""
        import psutil

        process = getattr(getattr(getattr(self, "driver", None), "service", None), "process", None)
        if process is None:
            return None
        total = 0
        try:
            for child in psutil.Process(process.pid).children(recursive=True):
                try:
                    total += getattr(child.memory_full_info(), "pss", None) or child.memory_info().rss
                except psutil.Error:
                    continue
        except psutil.Error:
            return None
        return total / 2**20

    def extra_results(self) -> dict:
        """Load split, first call, the in-page time per call by batch size, tensor counts (leaks), and the memory of
        Chromium's processes now."""
        by_batch = {str(size): in_page_figures(ms) for size, ms in sorted(self.page_ms.items())}
        load = {key: self.loading.get(key) for key in ("backend_init_ms", "download_parse_ms", "first_predict_ms")}
        return {"browser": self.browser_version(), "backend": self.loading["backend"],
                "backend_requested": self.backend, "renderer": self.loading.get("renderer"),
                "tfjs": self.loading.get("tfjs"), "wasm_simd": self.loading.get("simd"),
                "wasm_threads": self.loading.get("threads"), "load_ms": load, "in_page": by_batch,
                "num_tensors_first": self.tensors[0] if self.tensors else None,
                "num_tensors_last": self.tensors[-1] if self.tensors else None,
                "tensor_bytes": getattr(self, "tensor_bytes", None),  # tf.memory().numBytes after the last call
                "chromium_memory_mb": self.chromium_memory_mb()}

    def describe(self) -> ModelInfo:
        size = sum(f.stat().st_size for f in self.spec_path.parent.iterdir() if f.is_file())
        return ModelInfo(self.name, f"{self.runtime} ({self.loading['backend']})",
                         f"TF.js {self.loading.get('tfjs')}, {self.browser_version()}", self.input_format,
                         self.shape, self.categories, str(self.spec_path), size, None, self.device,
                         extra={"renderer": self.loading.get("renderer"), "format": self.format, "load_ms": {
                             k: self.loading.get(k) for k in ("backend_init_ms", "download_parse_ms",
                                                              "first_predict_ms")}})

    def release(self) -> None:
        """Chromium, its driver, the page server and the browser profile go; safe to call twice."""
        driver, server, profile = (getattr(self, key, None) for key in ("driver", "server", "_profile"))
        self.driver = self.server = self._profile = None
        if driver is not None:
            driver.quit()
        if server is not None:
            server.shutdown()
            server.server_close()
        if profile:
            shutil.rmtree(profile, ignore_errors=True)
