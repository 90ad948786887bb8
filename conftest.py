"""Repository-level conftest: the plugin itself comes from the ``pytest11`` entry point.

Kept deliberately empty of fixtures so the benchmarks in ``benchmarks/`` show exactly what a
user's own project needs: ``pip install pytest-sketchbench`` and a ``thresholds.toml``.
"""
