"""Benchmark hosts as pytest-xdist workers over SSH (``--tx ssh=HOST//python=PY``), for real: an OpenSSH
server started here on 127.0.0.1 with its own host key and a key made on the fly, on a free port.

Each worker's results reach the controller's reports with that worker's own detection (host, pid, hardware),
and killing one worker's SSH session loses only the models that worker had not reported yet.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from conftest import NUMPY_PLUGIN, REPO, run_options

pytestmark = pytest.mark.slow
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)

REGISTER = textwrap.dedent('''
    import os, time
    import psutil
    from centroid_plugin import CentroidModel
    from pytest_sketchbench import register_model

    class Logged(CentroidModel):
        def load(self):
            chain = [p.name() for p in psutil.Process().parents()]
            with open(os.environ["LOADS_FILE"], "a") as handle:
                handle.write(f"{self.name} {os.getpid()} {','.join(chain)}\\n")
            super().load()

    class Slow(Logged):
        def infer(self, prepared):
            time.sleep(0.05)
            return super().infer(prepared)

    weights = os.path.join(os.path.dirname(__file__), "centroid.npz")  # the worker's copy, wherever it runs
    register_model("alpha", weights=weights)(Logged)
    register_model("beta", weights=weights)(Logged)
    register_model("slow", weights=weights)(Slow)
''')
TESTS = ("test_accuracy.py", "test_latency.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory):
    """An sshd on 127.0.0.1 (own host key, a user key made now) and an ssh_config naming it 'benchhost'."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server/client not installed (bash tests/setup-system.sh installs openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = _free_port()
    (folder / "sshd_config").write_text(textwrap.dedent(f"""\
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {folder}/host_key
        AuthorizedKeysFile {folder}/authorized_keys
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PubkeyAuthentication yes
        PermitRootLogin prohibit-password
        StrictModes no
        UsePAM no
        PidFile {folder}/sshd.pid
    """))
    (folder / "ssh_config").write_text(textwrap.dedent(f"""\
        Host benchhost
          HostName 127.0.0.1
          Port {port}
          User {getpass.getuser()}
          IdentityFile {folder}/user_key
          IdentitiesOnly yes
          StrictHostKeyChecking no
          UserKnownHostsFile /dev/null
          BatchMode yes
          LogLevel ERROR
    """))
    try:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    except OSError:
        pass
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.skip(f"sshd did not start: {server.stderr.read()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    check = subprocess.run(["ssh", "-F", str(folder / "ssh_config"), "benchhost", "true"], capture_output=True,
                           text=True, timeout=30)
    if check.returncode != 0:
        server.kill()
        pytest.skip(f"cannot log in to the local sshd: {check.stderr.strip()[-300:]}")
    yield {"config": folder / "ssh_config", "server": server}
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def project(tmp_path, centroid_weights, bundled):
    root = tmp_path / "bench"
    root.mkdir()
    weights, bias = centroid_weights
    np.savez(root / "centroid.npz", w=weights, b=bias, categories=np.array(bundled.categories))
    (root / "centroid_plugin.py").write_text(NUMPY_PLUGIN)
    (root / "conftest.py").write_text(REGISTER)
    (root / "pytest.ini").write_text("[pytest]\n")  # the rootdir, here and on the workers
    for name in TESTS:
        shutil.copy(REPO / "benchmarks" / name, root / name)
    return root


def _pytest(project: Path, tmp_path: Path, *args, ssh=None, workers: int = 0, **popen):
    command = [sys.executable, "-m", "pytest", str(project), *run_options(20, budget=0.1, batch_sizes="1"),
               "-W", "ignore::DeprecationWarning", f"--sketch-json={tmp_path}/r.json", *args]
    if ssh is not None:
        remote = tmp_path / "remote"
        remote.mkdir(exist_ok=True)
        spec = (f"ssh=benchhost//ssh_config={ssh['config']}//python={sys.executable}//chdir={remote}"
                f"//env:LOADS_FILE={tmp_path / 'loads.txt'}")  # a remote host has its own environment
        command += ["-d", "--rsyncdir", str(project), "--max-worker-restart=0",
                    *[arg for _ in range(workers) for arg in ("--tx", spec)]]
    env = {**os.environ, "LOADS_FILE": str(tmp_path / "loads.txt")}
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def test_ssh_workers_give_the_local_accuracy_and_their_own_hardware(ssh_host, project, tmp_path):
    local_dir, remote_dir = tmp_path / "local", tmp_path / "ssh"
    local_dir.mkdir()
    remote_dir.mkdir()
    local = _pytest(project, local_dir, "--sketch-models=alpha,beta")
    local_out = local.communicate(timeout=300)[0]
    assert local.returncode == 0, local_out[-3000:]
    remote = _pytest(project, remote_dir, "--sketch-models=alpha,beta", ssh=ssh_host, workers=2)
    out = remote.communicate(timeout=300)[0]
    assert remote.returncode == 0, out[-3000:]
    assert "parallel: 2 worker(s) on --tx gateways" in out
    here = json.loads((local_dir / "r.json").read_text())["model_results"]
    there = json.loads((remote_dir / "r.json").read_text())["model_results"]
    loads = {line.split()[0]: line.split() for line in (remote_dir / "loads.txt").read_text().splitlines()}
    for model in ("alpha", "beta"):
        assert there[model]["accuracy_results"]["accuracy"] == here[model]["accuracy_results"]["accuracy"]
        assert there[model]["predicted"] == here[model]["predicted"]
        placement = there[model]["parallel"]
        assert placement["host"] == socket.gethostname() and placement["pid"] == int(loads[model][1])
        assert "sshd" in loads[model][2]  # measured in the worker that ssh started, not in the controller
        assert there[model]["hardware"].startswith("profile cpu; CPU ")  # that worker's own detection
    assert there["alpha"]["parallel"]["worker"] != there["beta"]["parallel"]["worker"]


def test_killing_one_workers_ssh_session_loses_only_its_models(ssh_host, project, tmp_path):
    run = _pytest(project, tmp_path, "--sketch-models=alpha,slow", f"--sketch-html={tmp_path}/r.html",
                  ssh=ssh_host, workers=2)
    loads = tmp_path / "loads.txt"
    deadline = time.monotonic() + 120
    victim = None
    while time.monotonic() < deadline and victim is None:
        lines = loads.read_text().splitlines() if loads.exists() else []
        slow = [line.split() for line in lines if line.startswith("slow ")]
        if slow:
            victim = int(slow[0][1])
        time.sleep(0.1)
    assert victim is not None, "the slow model never loaded"
    time.sleep(0.3)  # before its tests end: 0.05 s a call, ~26 calls (first call, 2 batches, 20+ timed rounds)
    session = next(p for p in psutil.Process(victim).parents() if p.name().startswith("sshd"))
    os.kill(session.pid, signal.SIGKILL)
    out = run.communicate(timeout=300)[0]
    assert run.returncode != 0
    report = json.loads((tmp_path / "r.json").read_text())
    alpha = report["model_results"]["alpha"]
    assert alpha["status"] == "measured" and alpha["timing_results"]["1"]["rounds"] >= 20, out[-3000:]
    slow = report["model_results"].get("slow", {})
    assert slow.get("status") != "passed" and not slow.get("timing_results")
    assert any("crashed" in note or "lost" in note for note in report["benchmark_metadata"]["notes"]), out[-2000:]
    assert (tmp_path / "r.html").exists()
