"""Layers point down (README, Layout): each module imports only from its own layer or the ones below it."""

from __future__ import annotations

import ast

from conftest import REPO

PACKAGE = REPO / "pytest_sketchbench"
LAYERS = [  # top to bottom
    {"plugin", "fixtures", "parallel", "cli", "history_cli", "bisect_cli", "__init__"},
    {"report"},
    {"session", "side_by_side", "diagnostics", "load_runs", "latency_runs", "session_core"},
    {"measure", "checks", "baseline", "baseline_gates", "loadgen", "load_errors", "compliance", "profiling",
     "host_audit", "input_probe", "config", "options", "history", "soak",
     "load_shapes", "load_gates"},
    {"models"},
    {"stats", "metrics", "data", "strokes", "preprocess", "hardware", "files", "guard", "content_hash", "errors",
     "codec", "results", "progress", "calibration"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.startswith("pytest_sketchbench.") else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_import_points_down_or_sideways():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = "pytest_sketchbench." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        here = layer_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("pytest_sketchbench.") and layer_of(name) < here:
                    upward.append(f"{module} imports {name}")
    assert upward == []


def test_every_module_has_a_layer():
    for path in PACKAGE.iterdir():
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            layer_of(f"pytest_sketchbench.{path.stem}")


def test_the_readme_names_every_fixture_and_every_threshold_check():
    """The README's fixture list is the benchmark writer's API reference: it must not fall behind the code."""
    import re

    readme = (REPO / "README.md").read_text()
    plugin = (PACKAGE / "fixtures.py").read_text()
    fixtures = set(re.findall(r"^def (sketch_\w+)\(", plugin, re.M)) | {"sketch_batch_size"}
    checks = set(re.findall(r"^    def (check_\w+)\(", (PACKAGE / "checks.py").read_text(), re.M)) - {"check_ratio"}
    missing = sorted(name for name in fixtures | checks if f"`{name}`" not in readme)
    assert missing == []
