"""Write the JSON reports that ``tests/test_cli.py`` reads (``tests/data/golden/cli/``): real runs of the
centroid model on the bundled drawings, made once here instead of three pytest runs per CLI test.

Run it again on purpose only (a format change, a new case): ``python scripts/make_cli_reports.py``. The
reports carry this machine's hardware block and timings; the CLI tests assert on verdicts and structure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from test_cli import CONFTEST  # noqa: E402  (the CLI tests' own project)

from conftest import NUMPY_PLUGIN, centroid_arrays, run_options  # noqa: E402
from pytest_sketchbench.data import load_dataset  # noqa: E402

OUT = REPO / "tests" / "data" / "golden" / "cli"
# (report name, extra pytest arguments, environment, thresholds.toml or None)
RUNS = [
    ("centroid", ["--sketch-models=centroid"], {}, None),
    ("other-xdist", ["--sketch-models=other", "-n", "2"], {}, None),
    ("both-accuracy", ["--sketch-models=centroid,other", "--sketch-threads=1", "-k", "accuracy"], {}, None),
    ("good", ["--sketch-models=centroid", "-k", "accuracy"], {}, None),
    ("degraded", ["--sketch-models=centroid", "-k", "accuracy"], {"DEGRADE": "4"}, None),
    ("three-models", ["--sketch-models=centroid,other,third", "-k", "accuracy"], {}, None),
    ("other-erred", ["--sketch-models=centroid,other", "-k", "accuracy"], {"OTHER_WEIGHTS": "no-such-file.npz"},
     None),
    ("failed", ["--sketch-models=centroid", "-k", "accuracy"], {}, "[centroid]\nmin_accuracy = 0.99\n"),
    ("fewer-drawings", ["--sketch-models=centroid", "-k", "accuracy", "--sketch-samples-per-category=10"], {},
     None),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(REPO / "pytest_sketchbench" / "bundled" / "quickdraw_test.npz")
    weights, bias = centroid_arrays(dataset)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        np.savez(project / "centroid.npz", w=weights, b=bias, categories=np.array(dataset.categories))
        (project / "centroid_plugin.py").write_text(NUMPY_PLUGIN)
        (project / "conftest.py").write_text(CONFTEST)
        for name in ("test_accuracy.py", "test_latency.py", "test_baseline.py", "test_resources.py"):
            shutil.copy(REPO / "benchmarks" / name, project / name)
        for name, args, env, thresholds in RUNS:
            (project / "thresholds.toml").unlink(missing_ok=True)
            if thresholds:
                (project / "thresholds.toml").write_text(thresholds)
            command = [sys.executable, "-m", "pytest", *run_options(30, budget=0.2, batch_sizes="1"), *args,
                       f"--sketch-json={OUT / name}.json"]
            done = subprocess.run(command, cwd=project, env=os.environ | env | {"PYTHONPATH": str(project)},
                                  capture_output=True, text=True)
            print(f"{name}: exit {done.returncode}: {done.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
