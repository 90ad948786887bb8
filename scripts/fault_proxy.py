"""A fault-injecting stand-in in front of a real model server, on 127.0.0.1: it forwards every request and
fails a set share of inference requests the way production servers fail.

    python scripts/fault_proxy.py --upstream http://127.0.0.1:8080 --port 8081 --fail 0.05 --how 503
    python scripts/fault_proxy.py --upstream http://127.0.0.1:8080 --cache     # answers repeats from memory
    python scripts/fault_proxy.py --upstream http://127.0.0.1:8080 --leak      # keeps every answer (grows)
    python scripts/fault_proxy.py --upstream http://127.0.0.1:8080 --wrong 0.01  # 1 % wrong, under load only

``--how``: ``503`` (Service Unavailable), ``reset`` (the connection closed with RST mid-request), ``delay``
(the answer held back ``--delay-s``), or ``mix`` (each of the three in turn). The choice of which request
fails is a seeded random draw (``--seed``), so a share is exact only on average: the measured rate has an
interval around the injected one, which is what ``max_error_rate`` is judged with. ``--wrong`` gives another
class (the runner-up made top) for that share of single-drawing requests — the ones load sends; the accuracy
pass sends batches — so a server can be right at rest and wrong under load.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAILURES = ("503", "reset", "delay")


class FaultProxy:
    """A proxy to ``upstream`` failing ``fail`` of the ``/infer`` requests; ``injected`` counts what it did."""

    def __init__(self, upstream: str, fail: float = 0.0, how: str = "503", seed: int = 0, delay_s: float = 2.0,
                 cache: bool = False, leak: bool = False, port: int = 0, wrong: float = 0.0):
        target = urlsplit(upstream)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.fail, self.how, self.delay_s, self.cache, self.leak, self.wrong = fail, how, delay_s, cache, leak, wrong
        self.wrong_answers = 0
        self.random = random.Random(seed)
        self.injected: dict[str, int] = {kind: 0 for kind in FAILURES}
        self.forwarded = 0
        self.answers: dict[bytes, tuple[int, list, bytes]] = {}
        self.kept: list[bytes] = []
        self._lock = threading.Lock()
        self._turn = 0
        self._local = threading.local()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _connection(self) -> http.client.HTTPConnection:
        """One kept-alive upstream connection per proxy thread."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return connection

    def _forward(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, list, bytes]:
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _fault(self) -> str | None:
        """Which failure this request gets, if any (a seeded draw; ``mix`` takes the kinds in turn)."""
        with self._lock:
            if self.random.random() >= self.fail:
                return None
            kind = FAILURES[self._turn % 3] if self.how == "mix" else self.how
            self._turn += 1
            self.injected[kind] += 1
            return kind

    def _maybe_wrong(self, answer: tuple[int, list, bytes]) -> tuple[int, list, bytes]:
        """A JSON answer for one drawing, with its top class moved to another, for ``wrong`` of them."""
        status, headers, data = answer
        if not self.wrong or status != 200:
            return answer
        try:
            body = json.loads(data)
            output = body["outputs"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return answer  # binary tensors: left alone
        if output.get("shape", [0])[0] != 1:
            return answer
        with self._lock:
            if self.random.random() >= self.wrong:
                return answer
            self.wrong_answers += 1
        scores = output["data"]
        top = max(range(len(scores)), key=scores.__getitem__)
        scores[(top + 1) % len(scores)] = scores[top] + 1.0
        return status, headers, json.dumps(body).encode()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self, status: int, headers: list, data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._relay(*proxy._forward("GET", self.path, None, self._headers()))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self.path.endswith("/infer"):
                    return self._relay(*proxy._forward("POST", self.path, body, self._headers()))
                fault = proxy._fault() if proxy.fail else None
                if fault == "503":
                    data = b'{"error": "injected: service unavailable"}'
                    return self._relay(503, [("Content-Type", "application/json")], data)
                if fault == "reset":  # RST, not FIN: what a crashed or overloaded balancer does
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return None
                if fault == "delay":
                    time.sleep(proxy.delay_s)
                key = hashlib.sha256(body).digest()
                if proxy.cache and key in proxy.answers:
                    return self._relay(*proxy.answers[key])
                answer = proxy._maybe_wrong(proxy._forward("POST", self.path, body, self._headers()))
                with proxy._lock:
                    proxy.forwarded += 1
                    if proxy.cache:
                        proxy.answers[key] = answer
                    if proxy.leak:
                        proxy.kept.append(answer[2] + body)
                return self._relay(*answer)

            def _headers(self) -> dict:
                return {k: v for k, v in self.headers.items()  # identity bodies: answers it can read and change
                        if k.lower() not in ("host", "connection", "accept-encoding")}

        return Handler

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the model server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--fail", type=float, default=0.0, help="share of /infer requests to fail (0 to 1)")
    parser.add_argument("--how", choices=[*FAILURES, "mix"], default="503")
    parser.add_argument("--delay-s", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", action="store_true", help="answer a repeated request from memory")
    parser.add_argument("--leak", action="store_true", help="keep every answer in memory")
    parser.add_argument("--wrong", type=float, default=0.0, help="share of single-drawing answers to make wrong")
    args = parser.parse_args()
    with FaultProxy(args.upstream, args.fail, args.how, args.seed, args.delay_s, args.cache, args.leak,
                    args.port, args.wrong) as proxy:
        print(f"fault proxy on {proxy.url} → {args.upstream} (fail {args.fail:g}, {args.how})", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"injected {proxy.injected}, forwarded {proxy.forwarded}")


if __name__ == "__main__":
    main()
