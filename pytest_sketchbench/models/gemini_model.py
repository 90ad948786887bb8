"""``gemini``: a cloud multimodal LLM benchmarked like any other model, on the real google-genai client.

Each drawing goes out as a PNG with a prompt listing the categories; the answer is constrained
to JSON naming one category (a response schema with an enum, where the API supports it) and
parsed strictly — anything else is tallied as ``invalid`` and counts as wrong. The model
answers with a class, not a distribution, so top-k is reported as not applicable.

Requests are rate-limited (requests per minute), bounded in concurrency, timed out, retried
with exponential backoff on 429/5xx/timeouts (our loop; the client's own retries stay off so
there is one mechanism and every retry is counted), and capped by a per-run budget.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import time

import numpy as np

from pytest_sketchbench.errors import ModelUnavailable, SketchBenchError, redact, register_secret
from pytest_sketchbench.models.base import ModelInfo, ModelPlugin

RETRYABLE = {408, 429, 500, 502, 503, 504}
DEFAULTS = {
    "model_name": "gemini-2.5-flash", "api_key_env": "GEMINI_API_KEY", "mode": "rest", "base_url": None,
    "api_version": None, "requests_per_minute": 60.0, "concurrency": 4, "timeout_s": 30.0, "max_retries": 4,
    "backoff_initial_s": 1.0, "backoff_max_s": 30.0, "max_requests": 1000,
    # USD per million tokens (gemini-2.5-flash list prices at the time of writing; configure yours)
    "price_input_per_million": 0.30, "price_output_per_million": 2.50, "ca_file": None,
}
PROMPT = ("This is a quick sketch of one of these categories: {names}. Answer with JSON "
          '{{"category": "<name>"}} naming exactly one category from the list.')


class GeminiModel(ModelPlugin):
    runtime = "google-genai"
    input_format = "png"
    outputs_probabilities = False
    local = False
    times_own_requests = True
    options = tuple(DEFAULTS) + ("prompt", "stage_timeout_s")
    stage_timeout_option = "stage_timeout_s"  # timeout_s bounds each request

    @classmethod
    def stage_deadline_s(cls, config: dict) -> float:
        """``stage_timeout_s``, else what the request budget can take: every request at the rate limit, then the
        last one's timeouts and back-offs, and a minute more. Past it the stage is recorded as timed out."""
        if "stage_timeout_s" in config:
            return float(config["stage_timeout_s"])
        setting = {**DEFAULTS, **config}.get
        budget_s = setting("max_requests") * 60.0 / setting("requests_per_minute")
        last_request_s = (setting("max_retries") + 1) * (setting("timeout_s") + setting("backoff_max_s"))
        return budget_s + last_request_s + 60.0

    @classmethod
    def validate_config(cls, config: dict) -> None:
        super().validate_config(config)
        mode = config.get("mode", "rest")
        if mode not in ("rest", "live"):
            raise SketchBenchError("gemini config", f"mode must be 'rest' or 'live', got {mode!r}",
                                   "set mode = \"rest\" (generate_content) or \"live\" (Live API)")
        for key in ("requests_per_minute", "timeout_s", "backoff_initial_s", "backoff_max_s"):
            if key in config and not (isinstance(config[key], int | float) and config[key] > 0):
                raise SketchBenchError("gemini config", f"{key} must be a positive number", f"e.g. {key} = 60")
        for key in ("concurrency", "max_requests"):  # 0 requests in flight would wait forever
            value = config.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SketchBenchError("gemini config", f"{key} must be a whole number >= 1, got {value!r}",
                                       f"e.g. {key} = {DEFAULTS[key]}")
        retries = config.get("max_retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise SketchBenchError("gemini config", f"max_retries must be a whole number >= 0, got {retries!r}",
                                   "e.g. max_retries = 4")

    def setting(self, key: str):
        return self.config.get(key, DEFAULTS.get(key))

    def import_runtime(self) -> None:
        from google import genai  # noqa: F401

    def load(self) -> None:
        from google.genai import types

        self.client = _client(self.name, self.setting)
        self.types = types
        self.device = "cloud"
        self.stats = {"requests": 0, "successes": 0, "invalid": 0, "failed": 0, "retries": 0, "timeouts": 0,
                      "rate_limited": 0, "tokens_in": 0, "tokens_out": 0, "not_sent": 0}
        self.request_seconds: list[float] = []
        self.server_seconds: list[float] = []
        self.request_times: list[float] = []
        self._next_slot = 0.0

    def before_accuracy_pass(self, dataset) -> None:
        """Take the dataset's categories (the prompt lists them) and refuse a run the budget cannot finish."""
        self.categories = list(dataset.categories)
        budget = int(self.setting("max_requests"))
        if len(dataset) > budget:
            per_category = max(1, budget // len(dataset.categories))
            raise SketchBenchError(f"model '{self.name}'",
                                   f"{len(dataset):,} drawings exceed the request budget max_requests={budget}",
                                   f"use --sketch-samples-per-category={per_category} or raise max_requests "
                                   f"in [models.{self.name}]")

    # -- inference ---------------------------------------------------------------------------
    def infer(self, prepared: list[str]) -> np.ndarray:
        """Class index per drawing; -1 where the answer was invalid or the request failed."""
        if self.categories is None:
            raise SketchBenchError(f"model '{self.name}'", "no category list", "set categories in its config")
        return np.array(asyncio.run(self._classify_all(prepared)), dtype=np.int64)

    def to_labels(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64)

    async def _classify_all(self, pngs: list[str]) -> list[int]:
        limit = asyncio.Semaphore(1 if self.setting("mode") == "live" else int(self.setting("concurrency")))
        lock = asyncio.Lock()
        if self.setting("mode") == "live":
            return await self._classify_live(pngs, lock)

        async def one(png: str) -> int:
            async with limit:
                return await self._with_retries(lambda: self._rest_call(png), lock)

        return list(await asyncio.gather(*(one(p) for p in pngs)))

    async def _wait_for_slot(self, lock: asyncio.Lock) -> bool:
        """Space requests evenly at requests_per_minute; False once the budget is spent."""
        async with lock:
            if self.stats["requests"] >= int(self.setting("max_requests")):
                return False
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 60.0 / float(self.setting("requests_per_minute"))
            self.stats["requests"] += 1
        await asyncio.sleep(slot - now)
        self.request_times.append(time.monotonic())
        return True

    async def _with_retries(self, call, lock: asyncio.Lock) -> int:
        from google.genai import errors

        delay = float(self.setting("backoff_initial_s"))
        for attempt in range(int(self.setting("max_retries")) + 1):
            if not await self._wait_for_slot(lock):
                self.stats["not_sent"] += 1
                return -1
            if attempt:
                self.stats["retries"] += 1
            started = time.perf_counter()
            try:
                text, usage, server_s = await asyncio.wait_for(call(), float(self.setting("timeout_s")))
            except TimeoutError:
                self.stats["timeouts"] += 1
                self.last_error = f"timed out after {self.setting('timeout_s')} s"
            except errors.APIError as exc:
                if exc.code == 429:
                    self.stats["rate_limited"] += 1
                self.last_error = redact(f"HTTP {exc.code}: {exc.message}")
                if exc.code not in RETRYABLE:
                    self.stats["failed"] += 1
                    return -1
            except Exception as exc:  # httpx transport errors (timeouts, resets) are transient
                if "timeout" in type(exc).__name__.lower():
                    self.stats["timeouts"] += 1
                self.last_error = redact(f"{type(exc).__name__}: {exc}")
            else:
                self.request_seconds.append(time.perf_counter() - started)
                if server_s is not None:
                    self.server_seconds.append(server_s)
                self.stats["tokens_in"] += usage[0]
                self.stats["tokens_out"] += usage[1]
                return self._parse(text)
            await asyncio.sleep(delay)
            delay = min(delay * 2, float(self.setting("backoff_max_s")))
        self.stats["failed"] += 1
        return -1

    def _parse(self, text: str | None) -> int:
        """Strict: a JSON object whose 'category' is exactly one of the category names."""
        try:
            answer = json.loads(text or "")
            category = answer["category"] if isinstance(answer, dict) else None
            index = self.categories.index(category)
        except (json.JSONDecodeError, KeyError, ValueError, TypeError):
            self.stats["invalid"] += 1
            return -1
        self.stats["successes"] += 1
        return index

    def _contents(self, png: str):
        prompt = self.config.get("prompt") or PROMPT.format(names=", ".join(self.categories))
        return [self.types.Part.from_bytes(data=base64.b64decode(png), mime_type="image/png"), prompt]

    async def _rest_call(self, png: str):
        config = self.types.GenerateContentConfig(
            temperature=0.0, response_mime_type="application/json",
            response_schema={"type": "OBJECT", "required": ["category"],
                             "properties": {"category": {"type": "STRING", "enum": list(self.categories)}}})
        response = await self.client.aio.models.generate_content(
            model=self.setting("model_name"), contents=self._contents(png), config=config)
        usage = response.usage_metadata
        tokens = ((usage.prompt_token_count or 0), (usage.candidates_token_count or 0)) if usage else (0, 0)
        headers = getattr(getattr(response, "sdk_http_response", None), "headers", None) or {}
        return response.text, tokens, _server_timing(headers)

    async def _classify_live(self, pngs: list[str], lock: asyncio.Lock) -> list[int]:
        """One Live API session (text modality) for the run; each drawing is one turn."""
        config = self.types.LiveConnectConfig(response_modalities=["TEXT"])
        results: list[int] = []
        try:
            return await self._live_session(pngs, lock, config, results)
        except SketchBenchError:
            raise
        except Exception as exc:  # the connect is outside the retries: google-genai's frames hold the key
            message = redact(f"{type(exc).__name__}: {exc}")[:200]
        raise SketchBenchError(f"model '{self.name}'", f"the Live API session failed after {len(results)} of "
                               f"{len(pngs)} drawings ({message})", f"check [models.{self.name}] and the endpoint")

    async def _live_session(self, pngs: list[str], lock: asyncio.Lock, config, results: list[int]) -> list[int]:
        async with self.client.aio.live.connect(model=self.setting("model_name"), config=config) as session:
            async def turn(png: str):
                await session.send_client_content(
                    turns=self.types.Content(role="user", parts=[
                        self.types.Part.from_bytes(data=base64.b64decode(png), mime_type="image/png"),
                        self.types.Part(text=self._contents(png)[1])]), turn_complete=True)
                text, tokens = "", (0, 0)
                async for message in session.receive():
                    text += message.text or ""
                    usage = message.usage_metadata
                    if usage:
                        tokens = (usage.prompt_token_count or 0, usage.response_token_count or 0)
                    if message.server_content and message.server_content.turn_complete:
                        break
                return text, tokens, None

            for png in pngs:
                results.append(await self._with_retries(lambda png=png: turn(png), lock))
        return results

    def after_accuracy_pass(self) -> None:
        """No answer at all is an error of the endpoint, never an accuracy of 0 (nor a baseline)."""
        if self.stats["successes"] + self.stats["invalid"] == 0:
            raise SketchBenchError(f"model '{self.name}'", f"none of its {self.stats['requests']} requests was "
                                   f"answered (last error: {getattr(self, 'last_error', None) or 'none recorded'})",
                                   "check base_url, the API key and the quota: nothing was scored")

    # -- reporting ---------------------------------------------------------------------------
    def extra_results(self) -> dict:
        answered = self.stats["successes"] + self.stats["invalid"]
        sent = max(answered + self.stats["failed"], 1)
        cost = (self.stats["tokens_in"] * float(self.setting("price_input_per_million"))
                + self.stats["tokens_out"] * float(self.setting("price_output_per_million"))) / 1e6
        spacing = np.diff(self.request_times) if len(self.request_times) > 1 else np.array([])
        median_request = float(np.median(self.request_seconds)) if self.request_seconds else None
        median_server = float(np.median(self.server_seconds)) if self.server_seconds else None
        return {
            **self.stats,
            "mode": self.setting("mode"), "model_name": self.setting("model_name"),
            "success_rate": self.stats["successes"] / sent, "invalid_rate": self.stats["invalid"] / sent,
            "estimated_cost_usd": round(cost, 6),
            "median_request_ms": None if median_request is None else median_request * 1000,
            "median_server_ms": None if median_server is None else median_server * 1000,
            "median_network_ms": (None if median_request is None or median_server is None
                                  else (median_request - median_server) * 1000),
            "measured_requests_per_minute": (60.0 / float(np.mean(spacing))) if spacing.size else None,
            "last_error": getattr(self, "last_error", None),
        }

    def measured_latencies(self) -> list[float]:
        """Per-request seconds (excluding rate-limit waits): the API's latency samples."""
        return list(self.request_seconds)

    def describe(self) -> ModelInfo:
        from google import genai

        return ModelInfo(self.name, self.runtime, genai.__version__, "png", [None], self.categories,
                         None, None, None, self.device, outputs_probabilities=False,
                         extra={"model_name": self.setting("model_name"), "mode": self.setting("mode"),
                                "endpoint": self.setting("base_url") or "default"})

    def release(self) -> None:
        self.client = None


def _client(name: str, setting):
    """The google-genai client, built where no frame pytest can print (``-l``, ``--tb=long``) holds the key.

    Every file, SSL or client error becomes one line naming the setting; the key is registered so that
    any message that might echo it is redacted.
    """
    from google import genai
    from google.genai import types

    options = {"timeout": int(setting("timeout_s") * 1000)}
    if setting("base_url"):
        options["base_url"] = setting("base_url")
    if setting("api_version"):
        options["api_version"] = setting("api_version")
    if setting("ca_file"):
        try:
            options["async_client_args"] = {"ssl": ssl.create_default_context(cafile=setting("ca_file"))}
        except (OSError, ssl.SSLError) as exc:
            raise SketchBenchError(f"[models.{name}] ca_file", f"cannot read {setting('ca_file')} "
                                   f"({exc.strerror or exc})", "point ca_file at a PEM bundle of CA certificates"
                                   ) from None
    env = setting("api_key_env")
    if not os.environ.get(env):
        raise ModelUnavailable(f"model '{name}'", f"no API key in ${env}",
                               f"export {env}=<your key> to benchmark {setting('model_name')}")
    register_secret(os.environ[env])
    try:
        return genai.Client(api_key=os.environ[env], http_options=types.HttpOptions(**options))
    except Exception as exc:  # noqa: BLE001 — any client error, reported without the key
        raise SketchBenchError(f"model '{name}'", f"the google-genai client refused its settings "
                               f"({redact(str(exc))[:200]})", f"check [models.{name}]") from None


def _server_timing(headers) -> float | None:
    """Seconds from a ``server-timing: …;dur=123`` header, which Google front ends send."""
    value = headers.get("server-timing") if hasattr(headers, "get") else None
    match = re.search(r"dur=([0-9.]+)", value or "")
    return float(match.group(1)) / 1000 if match else None
