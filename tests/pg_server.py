"""A throwaway PostgreSQL server for the history tests: initdb in a temporary folder, listening on a free
localhost port, stopped and deleted afterwards. PostgreSQL refuses to run as root: under root it runs as the
``postgres`` system user (Debian's package creates it)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BINARIES = [Path("/usr/lib/postgresql") / version / "bin" for version in ("17", "16", "15", "14")]


def binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    return next((folder for folder in BINARIES if (folder / "initdb").exists()), None)


def why_not() -> str | None:
    """Why no server can be started here (None when one can)."""
    if binaries() is None:
        return "no PostgreSQL server binaries (Debian: apt install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a ``postgresql://`` URL (user ``sketch``, password ``s3cret-pw``, database ``history``)."""
    folder = Path(tempfile.mkdtemp(prefix="sketch-pg-"))
    bin_dir = binaries()
    assert bin_dir is not None
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    password_file = folder / "pw"
    password_file.write_text("s3cret-pw\n")
    if as_user:
        os.chown(password_file, pwd.getpwnam("postgres").pw_uid, -1)

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "sketch", "--auth=scram-sha-256",
            f"--pwfile={password_file}", "-E", "UTF8")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
        url = f"postgresql://sketch:s3cret-pw@127.0.0.1:{port}/postgres"
        import psycopg

        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE history")
        yield url.rsplit("/", 1)[0] + "/history"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
