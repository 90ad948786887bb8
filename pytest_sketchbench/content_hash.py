"""The identity of a model: sha256 over its files, so that runs are matched by what was measured, not by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def content_sha256(path: str | Path | None) -> str | None:
    """sha256 over a model file, or over every file of a model folder (relative names and contents, in sorted
    order, so a renamed or moved file changes it); None where there is no local file (a served or API model)."""
    if not path:
        return None
    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file())
    else:
        return None
    digest = hashlib.sha256()
    for file in files:
        if root.is_dir():
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
