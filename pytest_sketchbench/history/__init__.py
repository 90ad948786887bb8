"""Benchmark history: every run's figures in a store (SQLite file or PostgreSQL), series per model and metric,
and the change points and drifts in them."""
