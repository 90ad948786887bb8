"""A local stand-in for the Gemini Live API: a TLS websocket server on 127.0.0.1 with a self-signed
certificate (the client forces ``wss://`` when an API key is set)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import threading
from pathlib import Path

from fake_gemini import png_key


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class FakeGeminiLive:
    def __init__(self, answers: dict[str, str], folder: Path):
        self.answers = answers
        self.cert, self.key = self_signed_certificate(folder)
        self.setups: list[dict] = []
        self.turns = 0
        self.api_keys: set[str] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    async def handler(self, websocket):
        self.api_keys.add(websocket.request.headers.get("x-goog-api-key", ""))
        self.setups.append(json.loads(await websocket.recv()))
        await websocket.send(json.dumps({"setupComplete": {}}))
        async for raw in websocket:
            message = json.loads(raw)
            content = message.get("clientContent") or message["client_content"]  # either spelling is valid JSON
            parts = content["turns"][0]["parts"]
            data = next((p.get("inlineData") or p["inline_data"])["data"] for p in parts
                        if "inlineData" in p or "inline_data" in p)
            png = base64.urlsafe_b64decode(data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4))
            self.turns += 1
            answer = json.dumps({"category": self.answers.get(png_key(png), "unknown")})
            await websocket.send(json.dumps({"serverContent": {"modelTurn": {"parts": [{"text": answer[:5]}]}}}))
            await websocket.send(json.dumps({"serverContent": {"modelTurn": {"parts": [{"text": answer[5:]}]},
                                                               "turnComplete": True},
                                             "usageMetadata": {"promptTokenCount": 260, "responseTokenCount": 9}}))

    def _serve(self):
        import ssl

        import websockets

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)

        async def main():
            async with websockets.serve(self.handler, "127.0.0.1", 0, ssl=context) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.ready.set()
                self.stop = asyncio.Event()
                await self.stop.wait()

        self.loop.run_until_complete(main())

    def __enter__(self) -> FakeGeminiLive:
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)
        self.base_url = f"https://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(5)
