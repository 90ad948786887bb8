"""A long run shows where it is on an interactive terminal, and nothing in logs: the same run under a pseudo-terminal
(``script``), with ``-q``, with ``CI=true`` and through a pipe."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import run_options

CONFTEST = ("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import register_model\n"
            "register_model('slowpoke', weights='centroid.npz', sleep_s=0.3)(CentroidModel)\n")
TEST = "def test_accuracy(sketch_predictions):\n    assert sketch_predictions.report.accuracy > 0.3\n"


@pytest.fixture
def slow_project(centroid_project):
    centroid_project.makeconftest(CONFTEST)
    centroid_project.makepyfile(test_slow=TEST)
    return centroid_project


def _run(project, *extra: str, env: dict[str, str] | None = None, terminal: bool = True) -> str:
    command = [sys.executable, "-m", "pytest", *run_options(30), "--sketch-eval-batch-size=128",
               "--sketch-models=slowpoke", *extra]
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER")} | (env or {})
    if terminal:  # util-linux script(1) gives the command a pseudo-terminal, as a person's shell would
        command = ["script", "-qec", shlex.join(command), os.devnull]
    done = subprocess.run(command, cwd=project.path, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout.replace("\r", "\n")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux script(1) for a pseudo-terminal")
def test_an_interactive_run_shows_the_stage_and_an_eta_and_logs_show_nothing(slow_project):
    shown = _run(slow_project)
    assert "[slowpoke: loading]" in shown
    assert "[slowpoke: the accuracy pass" in shown and ", ETA " in shown and "drawings/s)]" in shown
    assert "1 passed" in shown
    for quiet in (_run(slow_project, "-q"), _run(slow_project, env={"CI": "true"}),
                  _run(slow_project, terminal=False)):
        assert "[slowpoke:" not in quiet and "1 passed" in quiet


def test_the_status_is_appended_and_erased_so_pytest_keeps_its_line():
    from pytest_sketchbench.progress import TerminalStatus

    class Writer:
        fullwidth = 50

        def __init__(self):
            self.out, self._current_line = "", "test_x.py .."

        def write(self, text):
            self.out += text

        def flush(self):
            pass

    writer = Writer()
    status = TerminalStatus(writer)
    status.start("cnn", "loading")
    status.start("onnx", "a call as cnn's side-by-side partner")  # nested: the inner one shown, then the outer
    status.end()
    status.end()
    assert writer._current_line == "test_x.py .."  # pytest's column arithmetic is untouched
    frames = writer.out.split("\r")
    assert frames[1].startswith("test_x.py ..  [cnn: loading]") and len(frames[1]) == 49
    assert frames[2].rstrip() == "[onnx: a call as cnn's side-by-side partner]"  # too wide beside the base
    assert frames[3].startswith("test_x.py ..  [cnn: loading]")
    assert frames[-2].strip() == "test_x.py .." and frames[-1] == "test_x.py .."
