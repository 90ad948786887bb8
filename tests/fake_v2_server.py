"""A misbehaving Open Inference Protocol server on 127.0.0.1 (stdlib http.server), for the bad cases a real
server will not produce on demand: 5xx, 4xx, malformed responses, not ready. The good path is tested
against the real MLServer (tests/test_served.py)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

METADATA = {"name": "cnn", "platform": "fake", "inputs": [{"name": "image", "datatype": "FP32",
                                                          "shape": [-1, 28, 28, 1]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 23]}]}


class FakeV2Server:
    """``behaviour``: "500", "400", "escapes" (ANSI escapes in its error), "malformed", "not-json", "not-ready",
    "slow" (1 s), "endless", "trickle" or "bomb" (bodies that never end or explode) or "ok" (JSON or the
    binary tensor extension, answered in kind)."""

    def __init__(self, behaviour: str, compute_s: float = 0.0):
        self.behaviour, self.compute_s = behaviour, compute_s  # compute_s: a model's time per answer, stood in
        self.paths: list[str] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.paths.append(self.path)
                if self.path == "/v2/health/ready":
                    self._send(503 if outer.behaviour == "not-ready" else 200, {"ready": True})
                elif self.path == "/v2/models/cnn/ready":
                    self._send(200, {})
                elif self.path == "/v2/models/cnn":
                    self._send(200, METADATA)
                else:
                    self._send(404, {"error": f"Model {self.path.split('/')[3]} not found"})

            def do_POST(self):
                outer.paths.append(self.path)
                outer.headers.append(dict(self.headers))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                header_length = self.headers.get("Inference-Header-Content-Length")
                request = json.loads(body[:int(header_length)] if header_length else body or b"{}")
                if self.path == "/v2/repository/index":
                    return self._send(200, [{"name": "cnn", "state": "READY"}])
                tensor = request["inputs"][0]
                rows = tensor["shape"][0]
                if outer.behaviour == "500":
                    self._send(500, {"error": "runtime crashed"})
                elif outer.behaviour == "400":
                    self._send(400, {"error": "invalid tensor"})
                elif outer.behaviour == "escapes":  # a hostile server: erase the line, forge a green pass
                    self._send(400, {"error": "bad input\r\x1b[2K\x1b[32m===== 999 passed in 0.01s ====="
                                              "\x1b]0;pwned\x07"})
                elif outer.behaviour == "malformed":
                    self._send(200, {"outputs": [{"name": "probabilities", "shape": [rows, 23], "data": [1.0]}]})
                elif outer.behaviour == "not-json":
                    self._send(200, b"<html>proxy error</html>", "text/html")
                elif outer.behaviour == "slow":
                    time.sleep(1.0)
                    self._send(200, {})
                elif outer.behaviour in ("endless", "trickle", "bomb"):
                    self._hostile_body(outer.behaviour)
                else:  # column 0 holds each drawing's total ink: the client's encoding is checked end to end
                    time.sleep(outer.compute_s)
                    pixels = (np.frombuffer(body[int(header_length):], dtype=np.float32) if header_length
                              else np.asarray(tensor["data"], dtype=np.float32))
                    scores = np.zeros((rows, 23), np.float32)
                    scores[:, 0] = pixels.reshape(rows, -1).sum(axis=1)
                    self._send_scores(scores, binary=bool(header_length))

            def _hostile_body(self, kind: str):
                """A body that never ends (fast or a byte per 0.1 s), or 100 MiB of zeros gzipped to 100 KiB."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if kind == "bomb":
                    data = gzip.compress(b"0" * (100 << 20), compresslevel=9)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"[" * (1 << 16) if kind == "endless" else b" "
                try:
                    for _ in range(100_000):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        if kind == "trickle":
                            time.sleep(0.1)
                except OSError:  # the client gave up: what it should do
                    pass

            def _send_scores(self, scores, binary: bool):
                output = {"name": "probabilities", "shape": list(scores.shape), "datatype": "FP32"}
                if not binary:
                    return self._send(200, {"outputs": [{**output, "data": scores.ravel().tolist()}]})
                raw = scores.tobytes()
                header = json.dumps({"outputs": [{**output, "parameters": {"binary_data_size": len(raw)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Inference-Header-Content-Length", str(len(header)))
                self.send_header("Content-Length", str(len(header) + len(raw)))
                self.end_headers()
                self.wfile.write(header + raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client that timed out and left is expected
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeV2Server:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
