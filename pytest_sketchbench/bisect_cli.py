"""``sketchbench bisect GOOD BAD -- <pytest args>``: the first commit whose gate fails, found with ``git bisect run``.

Each commit git picks is tested by running pytest with the given arguments there (and ``--sketch-json``): exit 0
(good) when every model passed, 1 (bad) when a model failed a gate, 125 (git's "cannot test this commit") when the
run could not judge it — pytest itself failed (an install or collection error, exit 2–5), a model erred or was
missing, or a check was inconclusive (a gate that cannot decide never decides a bisection). Each verdict and report
is cached by commit in ``--cache`` (default ``.sketchbench-bisect/`` in the repository's git folder), so a second
bisection over the same commits reuses them. At the end the first bad commit is printed with the failing figures
and the same checks at its parent (measured then if git never picked it).

The working tree must be clean (git checks commits out in it); ``git bisect reset`` always runs at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_sketchbench.errors import SketchBenchError

GOOD, BAD, SKIP = 0, 1, 125


def git(*args: str, cwd: Path, check: bool = True) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if check and out.returncode != 0:
        raise SketchBenchError(f"git {' '.join(args)}", (out.stderr.strip() or out.stdout.strip())[:300],
                               "run sketchbench bisect inside the repository, with commits that exist")
    return out.stdout.strip()


def _verdict_of(rc: int, report_path: Path) -> tuple[int, str]:
    if rc not in (0, 1) or not report_path.exists():
        return SKIP, f"pytest exited {rc} without a report: the commit cannot be tested here"
    results = json.loads(report_path.read_text())["model_results"]
    statuses = {name: result.get("status") for name, result in results.items()}
    unsure = sorted(name for name, status in statuses.items() if status in ("error", "skipped", "not run",
                                                                            "inconclusive"))
    if unsure:
        return SKIP, f"not judged: {', '.join(f'{name} {statuses[name]}' for name in unsure)}{_why_unsure(results)}"
    if rc == 1 or any(status == "failed" for status in statuses.values()):
        return BAD, "a gate failed"
    return GOOD, "every gate passed"


def _why_unsure(results: dict[str, Any]) -> str:
    """The first inconclusive check's reason (what follows its figure: 'not judged on this host: steal 18%'), so
    that a bisection that cannot decide says why."""
    from pytest_sketchbench.codec import record_from_result

    for name, result in results.items():
        for verdict in record_from_result(name, result).verdicts:
            if verdict.outcome == "inconclusive" and " — " in verdict.message:
                return f" ({verdict.message.split(' — ', 1)[1]})"
    return ""


def step(cache: Path, pytest_args: list[str], root: Path) -> int:
    """Test the checked-out commit (or reuse its cached verdict); the exit code git bisect run reads."""
    sha = git("rev-parse", "HEAD", cwd=root)
    cache.mkdir(parents=True, exist_ok=True)
    verdict_path, report_path = cache / f"{sha}.verdict.json", cache / f"{sha}.json"
    if verdict_path.exists():
        verdict = json.loads(verdict_path.read_text())
        print(f"sketchbench bisect: {sha[:12]} {verdict['word']} (cached: {verdict['why']})", flush=True)
        return int(verdict["code"])
    out = subprocess.run([sys.executable, "-m", "pytest", *pytest_args, f"--sketch-json={report_path}", "-q",
                          "-p", "no:cacheprovider"], cwd=root, check=False)
    code, why = _verdict_of(out.returncode, report_path)
    word = {GOOD: "good", BAD: "bad", SKIP: "skip"}[code]
    verdict_path.write_text(json.dumps({"code": code, "word": word, "why": why, "rc": out.returncode}))
    with (cache / "runs.log").open("a") as runs:
        runs.write(f"{sha} {word}\n")
    print(f"sketchbench bisect: {sha[:12]} {word} ({why})", flush=True)
    return code


def figures(cache: Path, sha: str) -> dict[str, dict[str, Any]]:
    """Per model, its checks (message, measured) at ``sha`` from the cached report."""
    path = cache / f"{sha}.json"
    if not path.exists():
        return {}
    from pytest_sketchbench.codec import record_from_result

    results = json.loads(path.read_text())["model_results"]
    return {name: {v.check: v for v in record_from_result(name, result).verdicts} for name, result in results.items()}


def _skipped(cache: Path, start: int) -> str:
    """'; 3 of 5 commits tested this bisection were not judged (the last: …)': a gate that cannot decide (an
    unfit host, an error) leaves git bisect nothing to go on, and the user must know it was that."""
    runs = (cache / "runs.log").read_text().splitlines()[start:] if (cache / "runs.log").exists() else []
    skipped = [line.split()[0] for line in runs if line.endswith(" skip")]
    if not skipped:
        return ""
    why = json.loads((cache / f"{skipped[-1]}.verdict.json").read_text())["why"]
    return f"; {len(skipped)} of {len(runs)} commits tested this bisection were not judged (the last: {why})"


def bisect(args: argparse.Namespace) -> int:
    root = Path(git("rev-parse", "--show-toplevel", cwd=Path.cwd()))
    if git("status", "--porcelain", "--untracked-files=no", cwd=root):
        raise SketchBenchError(str(root), "has uncommitted changes; git bisect checks commits out in it",
                               "commit or stash them first")
    cache = Path(args.cache) if args.cache else root / git("rev-parse", "--git-dir", cwd=root) / "sketchbench-bisect"
    good, bad = git("rev-parse", args.good, cwd=root), git("rev-parse", args.bad, cwd=root)
    start = len((cache / "runs.log").read_text().splitlines()) if (cache / "runs.log").exists() else 0
    pytest_args = args.pytest_args
    if not pytest_args:
        raise SketchBenchError("sketchbench bisect", "no pytest arguments after --",
                               "e.g. sketchbench bisect v1.0 HEAD -- benchmarks/test_speed.py --sketch-models=onnx")
    command = [sys.executable, "-m", "pytest_sketchbench.bisect_cli", "--cache", str(cache), "--", *pytest_args]
    git("bisect", "start", bad, good, cwd=root)
    try:
        out = subprocess.run(["git", "bisect", "run", *command], cwd=root, capture_output=True, text=True,
                             check=False)
        first_bad = git("rev-parse", "refs/bisect/bad", cwd=root, check=False)
        if out.returncode != 0 or not first_bad or "is the first bad commit" not in out.stdout:
            tail = (out.stdout + out.stderr).strip().splitlines()[-3:]
            raise SketchBenchError(f"bisect {args.good}..{args.bad}", "git bisect found no first bad commit ("
                                   + " / ".join(tail) + ")" + _skipped(cache, start),
                                   "check that GOOD passes and BAD fails the gate")
        parent = git("rev-parse", f"{first_bad}^", cwd=root)
        if not (cache / f"{parent}.verdict.json").exists():  # the figures on the good side
            git("checkout", "-q", parent, cwd=root)
            step(cache, pytest_args, root)
    finally:
        git("bisect", "reset", cwd=root, check=False)
    runs = len((cache / "runs.log").read_text().splitlines()) - start
    subject = git("log", "-1", "--format=%h %s", first_bad, cwd=root)
    print(f"first bad commit: {subject} ({runs} test runs this bisection)")
    before, after = figures(cache, parent), figures(cache, first_bad)
    for model, checks in after.items():
        for check, verdict in checks.items():
            if verdict.passed is False:
                was = before.get(model, {}).get(check)
                print(f"  {model} {check}: {verdict.message}")
                if was is not None:
                    print(f"    at its parent {parent[:12]}: {was.message}")
    return 0


def add_parser(commands: Any) -> None:
    bisecting = commands.add_parser("bisect", help="the first commit whose gate fails, by git bisect run")
    bisecting.add_argument("good", metavar="GOOD")
    bisecting.add_argument("bad", metavar="BAD")
    bisecting.add_argument("--cache", help="where verdicts and reports are kept per commit")
    bisecting.epilog = "everything after -- is passed to pytest at each commit"


def split_pytest_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our arguments, pytest's): everything after the first ``--`` is pytest's (argparse's REMAINDER would also
    swallow our own options that come before it)."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_sketchbench.bisect_cli --cache DIR -- <pytest args>``: one step of git bisect run."""
    parser = argparse.ArgumentParser(prog="sketchbench-bisect-step")
    parser.add_argument("--cache", required=True)
    ours, pytest_args = split_pytest_args(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(ours)
    try:
        return step(Path(args.cache), pytest_args, Path(git("rev-parse", "--show-toplevel", cwd=Path.cwd())))
    except Exception as exc:  # noqa: BLE001 — anything here means this commit cannot be tested, not "bad"
        print(f"sketchbench bisect: cannot test this commit ({exc})", file=sys.stderr)
        return SKIP


if __name__ == "__main__":
    sys.exit(main())
