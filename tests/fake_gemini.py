"""A local stand-in for the Gemini API on 127.0.0.1: the real google-genai client talks to it.

It answers ``POST /<version>/models/<model>:generateContent`` from the drawing's true label (it is
given the PNG → category map), or wrongly, malformed, with 429/500, or slowly — as a test asks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def png_key(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class FakeGemini:
    def __init__(self, answers: dict[str, str], behaviour: str = "correct", fail_times: int = 0,
                 delay_s: float = 0.0):
        self.answers, self.behaviour, self.fail_times, self.delay_s = answers, behaviour, fail_times, delay_s
        self.request_times: list[float] = []
        self.api_keys: set[str] = set()
        self.paths: list[str] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                started = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with fake._lock:
                    fake.request_times.append(time.monotonic())
                    fake.api_keys.add(self.headers.get("x-goog-api-key", ""))
                    fake.paths.append(self.path)
                    attempt = len(fake.request_times)
                status, payload = fake.respond(body, attempt)
                if fake.behaviour == "bad-key":  # like Google's 400, but echoing the key back
                    key = self.headers.get("x-goog-api-key", "")
                    status, payload = 400, {"error": {"code": 400, "message": f"API key not valid: {key}",
                                                      "status": "INVALID_ARGUMENT"}}
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                server_ms = (time.perf_counter() - started) * 1000
                self.send_header("server-timing", f"gfet4t7; dur={server_ms:.3f}")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, body: dict, attempt: int) -> tuple[int, dict]:
        if self.behaviour in ("429", "500") and attempt <= self.fail_times:
            code = int(self.behaviour)
            return code, {"error": {"code": code, "message": "try again later", "status": "UNAVAILABLE"}}
        parts = body["contents"][0]["parts"]
        data = next(p["inlineData"]["data"] for p in parts if "inlineData" in p)
        png = base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4))
        category = self.answers.get(png_key(png), "unknown")
        if self.behaviour == "wrong":
            category = sorted(set(self.answers.values()) - {category})[0]
        text = "not json at all" if self.behaviour == "malformed" else json.dumps({"category": category})
        if self.behaviour == "outside":
            text = json.dumps({"category": "spaceship"})
        return 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": 270, "candidatesTokenCount": 9, "totalTokenCount": 279}}

    def __enter__(self) -> FakeGemini:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def answers_for(dataset) -> dict[str, str]:
    """PNG hash → true category, for the PNGs the plugin will send."""
    from pytest_sketchbench.preprocess import to_png_base64

    pngs = to_png_base64(dataset.images)
    return {png_key(base64.b64decode(p)): dataset.categories[label]
            for p, label in zip(pngs, dataset.labels, strict=True)}
