"""``sketchbench bisect`` over a real git history: 16 commits of a project whose model file gets 10 % slower at one
of them, the gate a same-run A/B against the good commit's file (``--sketch-baseline-models``)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from pytest_sketchbench.cli import main

SLOWED_AT, COMMITS = 9, 16


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def chain(tmp_path):
    """A project repository: commit i changes a note; from commit 9 on its model is 10 % slower (a dead
    convolution, ``scripts/make_slowed_model.py --extra-channels 330``: ×1.108 on the 2-core EPYC, CPU time)."""
    import onnx

    sys.path.insert(0, str(REPO / "scripts"))
    from make_slowed_model import with_extra_work

    repo, good = tmp_path / "repo", tmp_path / "good"
    (repo / "models").mkdir(parents=True)
    good.mkdir()
    (repo / "benchmarks").mkdir()
    shutil.copy(REPO / "benchmarks" / "test_baseline.py", repo / "benchmarks")
    for folder in (repo / "models", good):
        shutil.copy(REPO / "models" / "cnn.onnx", folder / "sut.onnx")
        shutil.copy(REPO / "models" / "cnn.classes.json", folder / "sut.classes.json")
    (repo / "thresholds.toml").write_text('[models.sut]\npath = "models/sut.onnx"\n\n[baseline]\n'
                                          "ab_latency_max_ratio = 1.05\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    shas = []
    for index in range(COMMITS):
        (repo / "notes.txt").write_text(f"change {index}\n")
        if index == SLOWED_AT:
            onnx.save(with_extra_work(onnx.load(REPO / "models" / "cnn.onnx"), 330), repo / "models" / "sut.onnx")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"commit {index}" + (" (the model gets slower)" if index == SLOWED_AT else ""))
        shas.append(git(repo, "rev-parse", "HEAD"))
    return repo, good, shas


@pytest.mark.slow
@pytest.mark.alone
def test_bisect_names_the_slowed_commit_within_log2_runs(chain, monkeypatch, capsys, tmp_path):
    repo, good, shas = chain
    monkeypatch.chdir(repo)
    args = ["bisect", shas[0], shas[-1], "--cache", str(tmp_path / "cache"), "--",
            "benchmarks/test_baseline.py::test_latency_vs_baseline", "--sketch-models=sut",
            f"--sketch-baseline-models={good}", "--sketch-samples-per-category=5", "--sketch-inconclusive=skip"]
    code = main(args)
    if code == 2 and "not judged on this host" in (err := capsys.readouterr().err):  # every verdict was a guess
        pytest.skip(f"a busy host left the A/B gate inconclusive: {err.strip()[-300:]}")
    assert code == 0
    out = capsys.readouterr().out
    assert f"first bad commit: {shas[SLOWED_AT][:7]}" in out, out
    runs = int(out.split(" test runs this bisection")[0].rsplit("(", 1)[1])
    assert runs <= math.ceil(math.log2(COMMITS)) + 1, out
    assert "ab_latency_max_ratio" in out and "at its parent" in out  # the figures on both sides
    assert git(repo, "rev-parse", "HEAD") == shas[-1]  # bisect reset
    assert main(args) == 0  # a second bisection reuses every verdict: no pytest run
    assert "(0 test runs this bisection)" in capsys.readouterr().out


def test_bisect_refuses_a_dirty_tree_in_one_line(tmp_path, monkeypatch, capsys):
    git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("1")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "one")
    (tmp_path / "f").write_text("2")
    monkeypatch.chdir(tmp_path)
    assert main(["bisect", "HEAD", "HEAD", "--", "-k", "x"]) == 2
    assert "has uncommitted changes" in capsys.readouterr().err


def test_a_commit_whose_gate_cannot_decide_is_skipped_and_a_bisection_left_undecided_says_why(tmp_path):
    """An inconclusive gate never decides a bisection; when git bisect is left without an answer, the error says
    how many commits were not judged and why (an unfit host, too few drawings), not only 'check GOOD and BAD'."""
    from pytest_sketchbench.bisect_cli import SKIP, _skipped, _verdict_of

    report = tmp_path / "abc.json"
    shutil.copy(REPO / "tests" / "data" / "golden" / "v2_report_with_baseline.json", report)
    code, why = _verdict_of(1, report)
    assert code == SKIP and why == ("not judged: onnx inconclusive (the interval straddles the limit on a sample of "
                                    "the test set: run the whole split to decide)")
    (tmp_path / "abc.verdict.json").write_text(json.dumps({"code": code, "word": "skip", "why": why}))
    (tmp_path / "runs.log").write_text("old good\ndef good\nabc skip\n")
    assert _skipped(tmp_path, start=1) == f"; 1 of 2 commits tested this bisection were not judged (the last: {why})"
    assert _skipped(tmp_path, start=3) == ""
