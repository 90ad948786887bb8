"""Files written so that nothing is lost or mixed: checked early, staged, then renamed together.

Every file goes first to a unique temporary file in its target folder (a full disk or a kill leaves
the previous good file untouched), and one run's files are renamed into place together under a lock
beside them, so two runs writing the same paths never leave a JSON from one and an HTML from the other.
Imports nothing heavy: the path checks run at session start in every project.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_sketchbench.errors import SketchBenchError


def check_output_paths(paths: dict[str, str | None]) -> None:
    """Create the folders of every requested output now and refuse one that cannot be written,
    before any test runs (``paths``: option name → file or folder; a ``…report-dir`` option names a folder)."""
    for option, value in paths.items():
        if not value:
            continue
        path = Path(value)
        is_folder = option.endswith("report-dir")
        folder = path if is_folder else path.parent
        if not is_folder and path.is_dir():
            raise SketchBenchError(f"{option}={value}", "is a folder", "give a file path")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SketchBenchError(f"{option}={value}", f"cannot create the folder {folder} ({exc.strerror})",
                                   "choose a writable location") from None
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise SketchBenchError(f"{option}={value}", f"the folder {folder} is not writable",
                                   "choose a writable location")


class StagedFiles:
    """One run's report files: staged one by one, then committed (renamed) together."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: str | Path, data: str | bytes) -> Path:
        """Write ``data`` to a unique temporary file beside ``path``; it replaces ``path`` at commit."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(payload)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(name, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from CI artefact steps
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        self._staged.append((Path(name), path))
        return path

    def commit(self) -> list[str]:
        """Rename every staged file into place under the lock; returns the paths written."""
        if not self._staged:
            return []
        with _locked(self._staged[0][1].parent):
            for temporary, final in self._staged:
                os.replace(temporary, final)
        written = [str(final) for _, final in self._staged]
        self._staged.clear()
        return written

    def discard(self) -> None:
        for temporary, _ in self._staged:
            temporary.unlink(missing_ok=True)
        self._staged.clear()


def write_file(path: Path, data: str) -> None:
    """One file through a staging of its own (a temporary file, then a rename): a reader never sees half a
    file, and another worker writing beside it never mixes with it."""
    files = StagedFiles()
    files.add(path, data)
    files.commit()


def is_stream(path: Path) -> bool:
    """An existing path that is neither a regular file nor a folder (a FIFO, a device such as /dev/zero, a socket):
    reading it may block forever or never end, so it is refused before any read."""
    return path.exists() and not (path.is_file() or path.is_dir())


def safe_name(model: str) -> str:
    """A model name as a file or folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself (no lock file left behind); renames alone where unsupported."""
    try:
        import fcntl

        descriptor = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
