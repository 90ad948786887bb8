"""The results, their codec, their files and the reports that read them are typed strictly (mypy --strict)."""

from __future__ import annotations

import pytest

from conftest import REPO

STRICT = ["results.py", "codec.py", "files.py", "errors.py", "content_hash.py", "report", "history"]


def test_the_results_codec_and_its_files_pass_mypy_strict(tmp_path):
    api = pytest.importorskip("mypy.api")
    paths = [str(REPO / "pytest_sketchbench" / name) for name in STRICT]
    out, err, status = api.run(["--strict", "--follow-imports=silent", "--ignore-missing-imports",
                                f"--cache-dir={tmp_path}", *paths])
    assert status == 0, out + err
