"""Serve a shipped ONNX model over the Open Inference Protocol (KServe v2) with MLServer, on 127.0.0.1.

    python scripts/serve_model.py                       # cnn.onnx as model "cnn" on http://127.0.0.1:8080
    python scripts/serve_model.py --server kserve --port 8090   # the same, by KServe's Python model server
    python scripts/serve_model.py --port 9000 --delay-ms 5   # a deliberately slower server
    python scripts/serve_model.py --install-only        # just make the server's virtual environment

Each server lives in its own virtual environment (``.venv-mlserver``, ``.venv-kserve``, pinned by
``servers/<server>/constraints.txt``) because its pins conflict with the plugin's; the first call
makes it (about a minute). The server runs in the foreground until interrupted; then benchmark it with
``pytest benchmarks/ --sketch-models=served-cnn``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_DIR = REPO / "servers" / "mlserver"
# each server: its venv, what it installs, the file that shows the install finished
SERVERS = {"mlserver": (REPO / ".venv-mlserver", ["mlserver", "onnxruntime"], "bin/mlserver"),
           "kserve": (REPO / ".venv-kserve", ["kserve", "onnxruntime"], "installed")}


def ensure_environment(server: str = "mlserver") -> Path:
    """The server's venv, made on first use from its own constraints (``servers/<server>/constraints.txt``)."""
    venv, packages, marker = SERVERS[server]
    if not (venv / marker).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        constraints = REPO / "servers" / server / "constraints.txt"
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        *(["-c", str(constraints)] if constraints.exists() else []), *packages], check=True)
        (venv / marker).touch(exist_ok=True)  # (MLServer's own script is its marker)
    return venv


def start_in_background(server: str, log: Path) -> tuple[subprocess.Popen, str]:
    """This script, serving cnn.onnx on a free port in its own process group, once the model is ready (for the
    measuring scripts; stop it with ``os.killpg(process.pid, signal.SIGTERM)``)."""
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, __file__, "--server", server, "--port", str(port)],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # the first start also makes the server's venv
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/v2/models/cnn/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{server} did not start; see {log}")


def write_repository(folder: Path, model: Path, name: str, port: int) -> None:
    """A model repository MLServer can start from: server settings, one model's settings, the runtime."""
    (folder / "settings.json").write_text(json.dumps({
        "http_port": port, "grpc_port": 0, "metrics_port": 0, "metrics_endpoint": None,
        "parallel_workers": 0, "host": "127.0.0.1", "debug": False,
    }))
    model_folder = folder / name
    model_folder.mkdir()
    shutil.copy(SERVER_DIR / "runtime.py", model_folder / "sketch_runtime.py")
    (model_folder / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "sketch_runtime.OnnxSketchRuntime",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, -1]}],
        "parameters": {"uri": str(model.resolve())},
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=sorted(SERVERS), default="mlserver",
                        help="MLServer, or KServe's Python model server (both speak the Open Inference Protocol)")
    parser.add_argument("--model", default=str(REPO / "models" / "cnn.onnx"))
    parser.add_argument("--name", default="cnn", help="the model name clients ask for")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sleep added to every request (MLServer)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads in the server")
    parser.add_argument("--cpus", default="", help="pin the server to these cores (e.g. 1), away from the client")
    parser.add_argument("--install-only", action="store_true")
    args = parser.parse_args()
    venv = ensure_environment(args.server)
    if args.install_only:
        return
    if not Path(args.model).is_file():
        sys.exit(f"{args.model}: model file not found — pass --model with an .onnx file")
    if args.delay_ms and args.server != "mlserver":
        sys.exit("--delay-ms: only the MLServer runtime adds a delay — use --server mlserver")
    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    env = {**os.environ, "SKETCH_SERVER_DELAY_MS": str(args.delay_ms), "SKETCH_SERVER_THREADS": str(args.threads)}
    if args.server == "kserve":
        command = [str(venv / "bin" / "python"), str(REPO / "servers" / "kserve" / "server.py"), "--model",
                   str(Path(args.model).resolve()), "--model_name", args.name, "--http_port", str(args.port),
                   "--threads", str(args.threads)]
    else:
        folder = Path(tempfile.mkdtemp(prefix="sketch-mlserver-"))
        write_repository(folder, Path(args.model), args.name, args.port)
        os.chdir(folder)
        command = [str(venv / "bin" / "mlserver"), "start", str(folder)]
    try:
        os.execve(command[0], command, env)
    except OSError as exc:
        sys.exit(f"{command[0]}: cannot start {args.server} ({exc}) — remove {venv} and run again to reinstall it")


if __name__ == "__main__":
    main()
