"""``runtime = "v2"``: a model behind a server speaking the Open Inference Protocol (KServe v2 REST).

That protocol is what Triton, KServe, MLServer, Seldon and OpenVINO Model Server speak, so one plugin
benchmarks a model wherever it is deployed. The server is checked first (live, ready, has the model),
then its metadata endpoint says the input's name, datatype and shape, from which requests are built.
A batch goes out in requests of at most ``max_batch_size`` drawings, ``concurrency`` at a time, as JSON
tensors or, with ``tensor_format = "binary"``, the binary tensor extension (Triton, KServe). Each request
is timed on the client; where the server reports its own time (a ``Server-Timing`` header, or Triton's
``…compute_infer_time…`` response parameters) the difference is the network's. The HTTP client is httpx.
"""

from __future__ import annotations

import json
import os
import re
import string
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pytest_sketchbench.errors import (
    ModelOutputError,
    RequestFailed,
    ServerUnreachable,
    SketchBenchError,
    redact,
    register_secret,
)
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin, image_layout

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "UINT8": np.uint8, "INT32": np.int32,
             "INT64": np.int64}
MAX_RESPONSE_BYTES = 64 << 20  # decoded: far above one score per category for a batch of thousands
DEFAULTS = {"url": None, "model_name": None, "model_version": None, "headers": {}, "timeout_s": 10.0,
            "concurrency": 1, "max_batch_size": 64, "tensor_format": "json", "output": None}


class OpenInferenceModel(ModelPlugin):
    runtime = "open-inference-v2"
    options = (*(k for k in DEFAULTS if k != "timeout_s"), "stage_timeout_s")
    stage_timeout_option = "stage_timeout_s"  # timeout_s bounds each request
    results_key = "served"

    @classmethod
    def validate_config(cls, config: dict) -> None:
        super().validate_config(config)
        where = "v2 model config"
        if not isinstance(config.get("url"), str) or not re.match(r"https?://", config["url"]):
            raise SketchBenchError(where, f"url = {config.get('url')!r} is not an http(s) URL",
                                   'e.g. url = "http://127.0.0.1:8080"')
        if not isinstance(config.get("model_name"), str) or not config["model_name"]:
            raise SketchBenchError(where, "no model_name", 'the name the server knows the model by, e.g. "cnn"')
        if config.get("tensor_format", "json") not in ("json", "binary"):
            raise SketchBenchError(where, f"tensor_format = {config['tensor_format']!r}", 'use "json" or "binary"')
        for key in ("concurrency", "max_batch_size"):
            value = config.get(key, DEFAULTS[key])
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SketchBenchError(where, f"{key} = {value!r} is not a positive integer", f"e.g. {key} = 4")
        if not isinstance(config.get("headers", {}), dict):
            raise SketchBenchError(where, "headers must be a table of name = value",
                                   'e.g. headers = { Authorization = "Bearer ${MY_TOKEN}" }')

    def setting(self, key: str):
        return self.config.get(key, DEFAULTS[key])

    def import_runtime(self) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise SketchBenchError(f"model '{self.name}'", "the v2 runtime needs httpx",
                                   "pip install 'pytest-sketchbench[serve]'") from None

    # -- connecting ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.setting("url").rstrip("/")

    @property
    def model_path(self) -> str:
        version = self.setting("model_version")
        return f"/v2/models/{self.setting('model_name')}" + (f"/versions/{version}" if version else "")

    def load(self) -> None:
        import httpx

        self.client = httpx.Client(base_url=self.base_url, headers=self._headers(),
                                   timeout=float(self.setting("timeout_s")),
                                   limits=httpx.Limits(max_connections=int(self.setting("concurrency"))))
        self.device = "remote"
        self.timings: dict[int, tuple[list[float], list[float]]] = {}  # drawings per request → client, server s
        self._check_ready()
        self.metadata = self._get(self.model_path, "the model's metadata")
        self._read_metadata(self.metadata)
        self.categories = self.read_categories([])
        self.pool = ThreadPoolExecutor(int(self.setting("concurrency")), thread_name_prefix=f"v2-{self.name}")

    def _headers(self) -> dict[str, str]:
        """Configured headers with ``${VAR}`` taken from the environment; the values are secrets."""
        headers = {}
        for key, value in self.setting("headers").items():
            try:
                expanded = string.Template(str(value)).substitute(os.environ)
            except KeyError as exc:
                raise SketchBenchError(f"[models.{self.name}] headers.{key}", f"${exc.args[0]} is not set",
                                       f"export {exc.args[0]}=… before the run") from None
            register_secret(expanded)
            headers[key] = expanded
        return headers

    def _request(self, method: str, path: str, what: str, **kwargs):
        """One HTTP call; every failure becomes one line naming the URL and what answered."""
        import httpx

        url = self.base_url + path
        try:
            response = self._bounded(method, path, **kwargs)
        except httpx.TimeoutException:
            raise RequestFailed(f"model '{self.name}'", f"{what}: no answer from {url} within "
                                f"timeout_s={self.setting('timeout_s')}",
                                f"the server is overloaded or stuck; raise timeout_s in [models.{self.name}]",
                                kind="timeout") from None
        except httpx.HTTPError as exc:
            subject, problem = f"model '{self.name}'", (f"{what}: cannot reach {url} "
                                                       f"({type(exc).__name__}: {redact(str(exc))[:120]})")
            fix = f"start the server (python scripts/serve_model.py) or fix url in [models.{self.name}]"
            if isinstance(exc, httpx.ConnectError):
                raise ServerUnreachable(subject, problem, fix) from None
            raise RequestFailed(subject, problem, fix, kind=_transport_kind(exc)) from None
        return response

    def _bounded(self, method: str, path: str, **kwargs):
        """The whole response, read within ``timeout_s`` in all and at most MAX_RESPONSE_BYTES once decoded: a
        server that trickles bytes, never ends its body or sends a compression bomb cannot hang or fill the run
        (httpx's own timeout bounds each read, not the whole answer)."""
        import httpx

        limit_s = float(self.setting("timeout_s"))
        started = time.monotonic()
        with self.client.stream(method, path, **kwargs) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise SketchBenchError(f"model '{self.name}'", f"{response.request.url} sent more than "
                                           f"{MAX_RESPONSE_BYTES >> 20} MiB", "the server is not a v2 model server, "
                                           "or its model answers far more than one score per category")
                if time.monotonic() - started > limit_s:
                    raise httpx.ReadTimeout("the answer took longer than timeout_s", request=response.request)
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=bytes(body), request=response.request)

    def _get(self, path: str, what: str) -> dict:
        response = self._request("GET", path, what)
        if response.status_code == 404 and path.startswith("/v2/models/"):
            raise SketchBenchError(f"model '{self.name}'", f"the server at {self.base_url} has no model "
                                   f"'{self.setting('model_name')}'{self._served_models()}",
                                   f"fix model_name (or model_version) in [models.{self.name}]")
        return self._json(response, what)

    def _json(self, response, what: str) -> dict:
        if response.status_code >= 400:
            raise RequestFailed(f"model '{self.name}'", f"{what}: {response.request.url} answered HTTP "
                                f"{response.status_code} ({_error_text(response)})", "see the server's log",
                                kind=f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ModelOutputError(f"model '{self.name}'", f"{what}: {response.request.url} answered with no "
                                   f"JSON object ({redact(response.text[:80])!r})",
                                   "is this an Open Inference Protocol (v2) server?")
        return body

    def _served_models(self) -> str:
        """``(it serves: a, b)`` from the repository extension, where the server has it."""
        try:
            response = self.client.post("/v2/repository/index", json={})
            names = sorted({str(m.get("name")) for m in response.json()}) if response.status_code == 200 else []
        except Exception:  # noqa: BLE001 — an optional extension: the message simply says less
            names = []
        return f" (it serves: {', '.join(names)})" if names else ""

    def _check_ready(self) -> None:
        response = self._request("GET", "/v2/health/ready", "readiness check")
        if response.status_code != 200:
            raise SketchBenchError(f"model '{self.name}'", f"{self.base_url}/v2/health/ready answered HTTP "
                                   f"{response.status_code} ({_error_text(response)}): the server is not ready",
                                   "wait for it to finish loading, or check its log")
        ready = self._request("GET", self.model_path + "/ready", "model readiness check")
        if ready.status_code == 404:
            self._get(self.model_path, "the model's metadata")  # raises: no such model
        if ready.status_code != 200:
            raise SketchBenchError(f"model '{self.name}'", f"{self.base_url}{self.model_path}/ready answered "
                                   f"HTTP {ready.status_code}: the model is not ready", "check the server's log")

    def _read_metadata(self, metadata: dict) -> None:
        """Input name, datatype and layout from the metadata endpoint (NHWC or NCHW, 1 or 3 channels)."""
        inputs = metadata.get("inputs") or []
        if not inputs or not isinstance(inputs[0], dict) or "shape" not in inputs[0]:
            raise ModelOutputError(f"model '{self.name}'", f"the metadata of {self.model_path} lists no input "
                                   "with a shape", "configure the model's inputs on the server")
        model_input = inputs[0]
        self.input_name = str(model_input.get("name", "input"))
        self.datatype = str(model_input.get("datatype", "FP32")).upper()
        if self.datatype not in DATATYPES:
            raise SketchBenchError(f"model '{self.name}'", f"input datatype {self.datatype} is not supported",
                                   f"serve an input of one of {', '.join(DATATYPES)}")
        shape = [int(d) for d in model_input["shape"]]
        if len(shape) == 3:  # no batch dimension declared
            shape = [-1, *shape]
        if len(shape) != 4:
            raise SketchBenchError(f"model '{self.name}'", f"input shape {model_input['shape']} is not an image batch",
                                   "serve an input of shape [-1, H, W, C] or [-1, C, H, W]")
        self.shape = shape
        self.channels_first, self.input_format = image_layout(shape)
        outputs = metadata.get("outputs") or [{}]
        self.output_name = self.setting("output") or outputs[0].get("name")

    def input_size(self) -> tuple[int, int]:
        height, width = (self.shape[2], self.shape[3]) if self.channels_first else (self.shape[1], self.shape[2])
        return (28, 28) if height < 1 or width < 1 else (height, width)

    # -- inference ---------------------------------------------------------------------------
    def prepare(self, images: np.ndarray) -> list[np.ndarray]:
        batch = super().prepare(images)
        if self.channels_first:
            batch = batch.transpose(0, 3, 1, 2)
        batch = np.ascontiguousarray(batch.astype(DATATYPES[self.datatype], copy=False))
        size = int(self.setting("max_batch_size"))
        return [batch[start:start + size] for start in range(0, len(batch), size)]

    def infer(self, prepared: list[np.ndarray]) -> np.ndarray:
        if len(prepared) == 1:
            return self._infer_one(prepared[0])
        return np.concatenate(list(self.pool.map(self._infer_one, prepared)))

    def _infer_one(self, batch: np.ndarray) -> np.ndarray:
        body, headers = self._encode(batch)
        started = time.perf_counter()
        response = self._request("POST", self.model_path + "/infer", "inference", content=body, headers=headers)
        elapsed = time.perf_counter() - started
        outputs, parameters = self._decode(response)
        client, server = self.timings.setdefault(len(batch), ([], []))
        client.append(elapsed)
        server_s = _server_seconds(response.headers, parameters)
        if server_s is not None:
            server.append(server_s)
        return outputs

    def _encode(self, batch: np.ndarray) -> tuple[bytes, dict[str, str]]:
        tensor = {"name": self.input_name, "shape": list(batch.shape), "datatype": self.datatype}
        request: dict = {"inputs": [tensor]}
        if self.output_name:
            request["outputs"] = [{"name": self.output_name}]
        if self.setting("tensor_format") == "json":
            tensor["data"] = batch.ravel().tolist()
            return json.dumps(request).encode(), {"Content-Type": "application/json"}
        raw = batch.tobytes()
        tensor["parameters"] = {"binary_data_size": len(raw)}
        for output in request.get("outputs", [{}]):
            output.setdefault("parameters", {})["binary_data"] = True
        header = json.dumps(request).encode()
        return header + raw, {"Content-Type": "application/octet-stream",
                              "Inference-Header-Content-Length": str(len(header))}

    def _decode(self, response) -> tuple[np.ndarray, dict]:
        """The named (else first) output as an array, from JSON data or the binary extension."""
        length = response.headers.get("inference-header-content-length")
        if length is not None and response.status_code < 400:
            header, raw = response.content[:int(length)], response.content[int(length):]
            try:
                body = json.loads(header)
            except ValueError:
                body = None
        else:
            body, raw = self._json(response, "inference"), b""
        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not outputs or not isinstance(outputs, list):
            raise ModelOutputError(f"model '{self.name}'", "the inference response has no outputs",
                                   "check the server's model: it must return one score per category")
        chosen = next((o for o in outputs if o.get("name") == self.output_name), outputs[0])
        try:
            dtype = DATATYPES.get(str(chosen.get("datatype", "FP32")).upper(), np.float32)
            size = (chosen.get("parameters") or {}).get("binary_data_size")
            values = (np.frombuffer(raw[:size], dtype=dtype) if size is not None
                      else np.asarray(chosen["data"], dtype=np.float64))
            array = values.reshape([int(d) for d in chosen["shape"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelOutputError(f"model '{self.name}'", f"output '{chosen.get('name')}' cannot be read "
                                   f"({type(exc).__name__}: {str(exc)[:80]})",
                                   "the server must return data and shape for each output") from None
        return array, body.get("parameters") or {}

    def placement(self) -> str:
        return f"served by {self.base_url} ({self.metadata.get('platform') or 'platform not stated'})"

    def extra_results(self) -> dict:
        """Client, server and network time per request (p50 by drawings per request), where the server
        reports its own time; ``network`` is everything else: transport, (de)serialisation, queueing."""
        by_batch = {}
        for size, (client, server) in sorted(self.timings.items()):
            client_ms = float(np.median(client)) * 1000
            server_ms = float(np.median(server)) * 1000 if server else None
            by_batch[str(size)] = {"requests": len(client), "client_p50_ms": client_ms, "server_p50_ms": server_ms,
                                   "network_p50_ms": None if server_ms is None else client_ms - server_ms}
        return {"url": self.base_url, "model_name": self.setting("model_name"),
                "tensor_format": self.setting("tensor_format"), "concurrency": int(self.setting("concurrency")),
                "requests": sum(len(client) for client, _ in self.timings.values()), "by_batch": by_batch}

    def describe(self) -> ModelInfo:
        import httpx

        return ModelInfo(self.name, self.runtime, f"httpx {httpx.__version__}", self.input_format, self.shape,
                         self.categories, f"{self.base_url}{self.model_path}", None, None, self.device,
                         extra={"platform": self.metadata.get("platform"), "input": self.input_name,
                                "datatype": self.datatype, "tensor_format": self.setting("tensor_format")})

    def release(self) -> None:
        if getattr(self, "pool", None) is not None:
            self.pool.shutdown(wait=False)
        if getattr(self, "client", None) is not None:
            self.client.close()


def _error_text(response) -> str:
    """The server's own words (``{"error": ...}`` in v2), short and without secrets."""
    try:
        body = response.json()
        text = body.get("error") or body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        text = None
    return redact(str(text or response.text or response.reason_phrase))[:160].replace("\n", " ")


def _transport_kind(exc: Exception) -> str:
    """How a request broke below HTTP: a connection reset or closed mid-answer, a protocol error."""
    import httpx

    text = str(exc).lower()
    if "reset" in text or "disconnected" in text or isinstance(exc, httpx.RemoteProtocolError):
        return "connection reset"
    return f"transport ({type(exc).__name__})"


def _server_seconds(headers, parameters: dict) -> float | None:
    """The server's own time: a ``Server-Timing: …;dur=<ms>`` header, else Triton-style response parameters."""
    match = re.search(r"dur=([0-9.]+)", headers.get("server-timing") or "")
    if match:
        return float(match.group(1)) / 1000
    for key in ("compute_infer_time_ns", "server_compute_infer_ns"):
        if isinstance(parameters.get(key), int | float):
            return float(parameters[key]) / 1e9
    return None
