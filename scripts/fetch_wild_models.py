"""Fetch the published Quick, Draw! models that tests/data/wild/ describes but cannot ship (their authors state no
licence), at the pinned commits of ``tests/data/wild/sources.toml``, and check each file's sha256.

    python scripts/fetch_wild_models.py            # download what is missing, check every file
    python scripts/fetch_wild_models.py --check    # only check the files already there (no network)

A file whose hash differs is deleted and reported: a moved branch or a tampered copy is never measured.
The tests that use these files skip, naming this script, when a file is missing.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
import urllib.request
from pathlib import Path

from pytest_sketchbench.content_hash import content_sha256

WILD = Path(__file__).resolve().parent.parent / "tests" / "data" / "wild"
TIMEOUT_S = 60


def fetch(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - https URLs from sources.toml
        partial.write_bytes(response.read())
    partial.replace(target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the files already fetched; download nothing")
    args = parser.parse_args()
    files = tomllib.loads((WILD / "sources.toml").read_text())["file"]
    failures = 0
    for entry in files:
        target = WILD / entry["path"]
        if not target.exists() and not args.check:
            try:
                fetch(entry["url"], target)
            except OSError as exc:
                print(f"{entry['path']}: cannot download ({exc}) — check the network, or copy the file from "
                      f"{entry['url']}")
                failures += 1
                continue
        if not target.exists():
            print(f"{entry['path']}: missing")
            failures += 1
        elif (found := content_sha256(target)) != entry["sha256"]:
            target.unlink()
            print(f"{entry['path']}: sha256 {found}, expected {entry['sha256']} — deleted; check sources.toml")
            failures += 1
        else:
            print(f"{entry['path']}: ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
