"""The history store: runs and their points in two tables, the same schema in a SQLite file (the default: no
server, fits a CI cache) or a PostgreSQL database (``postgresql://…``, shared by runners; psycopg 3).

One small interface (:class:`HistoryStore`); the two backends differ only in how they connect, their parameter
marker and their id column. A run is stored once (by the report's ``run_id``): re-adding it is a no-op.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from pytest_sketchbench.errors import SketchBenchError, register_secret
from pytest_sketchbench.history.points import Point

SCHEMA_VERSION = 1
STATUSES = ("complete", "interrupted", "errored")  # only complete runs are analysed unless asked


@dataclass(frozen=True)
class Run:
    run_id: str
    commit: str | None
    branch: str | None
    created: str  # ISO 8601, UTC: the order of a series
    machine: str
    speed_index: float | None = None
    host: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # the host audit of the run
    status: str = "complete"
    source: str | None = None  # the JSON report it was read from, if any


@dataclass(frozen=True)
class SeriesPoint:
    run: Run
    value: float
    low: float | None
    high: float | None
    content_hash: str | None
    higher_is_better: bool = False


SeriesKey = tuple[str, str, str]  # (model, metric, machine: "" for a figure that travels across machines)


class HistoryStore(Protocol):
    def add_run(self, run: Run, points: Sequence[Point]) -> bool: ...

    def runs(self, branches: Sequence[str] | None = None, statuses: Sequence[str] = ("complete",)) -> list[Run]: ...

    def series(self, branches: Sequence[str] | None = None) -> dict[SeriesKey, list[SeriesPoint]]: ...

    def close(self) -> None: ...


TABLES = [
    """CREATE TABLE IF NOT EXISTS sketch_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sketch_runs (
        id {id}, run_id TEXT NOT NULL UNIQUE, commit_sha TEXT, branch TEXT, created TEXT NOT NULL,
        machine TEXT NOT NULL, speed_index DOUBLE PRECISION, host TEXT, status TEXT NOT NULL, source TEXT)""",
    """CREATE TABLE IF NOT EXISTS sketch_points (
        run INTEGER NOT NULL REFERENCES sketch_runs(id), model TEXT NOT NULL, metric TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION, high DOUBLE PRECISION,
        machine_bound INTEGER NOT NULL, higher_is_better INTEGER NOT NULL, content_hash TEXT,
        PRIMARY KEY (run, model, metric))""",
]
RUN_COLUMNS = "run_id, commit_sha, branch, created, machine, speed_index, host, status, source"


class SqlStore:
    """Both backends: a DB-API connection, its parameter marker and its id column type."""

    def __init__(self, connection: Any, marker: str, id_column: str, where: str):
        self.connection, self.marker, self.where = connection, marker, where
        with self._cursor() as cursor:
            for table in TABLES:
                cursor.execute(table.format(id=id_column))
            cursor.execute(self._sql("SELECT value FROM sketch_meta WHERE key = ?"), ("schema_version",))
            row = cursor.fetchone()
            if row is None:
                cursor.execute(self._sql("INSERT INTO sketch_meta (key, value) VALUES (?, ?)"),
                               ("schema_version", str(SCHEMA_VERSION)))
            elif int(row[0]) > SCHEMA_VERSION:
                raise SketchBenchError(where, f"is a history store of schema version {row[0]}; this version reads "
                                       f"1 to {SCHEMA_VERSION}", "upgrade pytest-sketchbench")

    def _sql(self, text: str) -> str:
        return text.replace("?", self.marker)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        cursor = self.connection.cursor()
        try:
            yield cursor
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def add_run(self, run: Run, points: Sequence[Point]) -> bool:
        """Store a run and its points in one transaction; False when the run is already stored."""
        if run.status not in STATUSES:
            raise ValueError(f"unknown run status {run.status!r}")
        with self._cursor() as cursor:
            cursor.execute(self._sql("SELECT id FROM sketch_runs WHERE run_id = ?"), (run.run_id,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(self._sql(f"INSERT INTO sketch_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                           (run.run_id, run.commit, run.branch, run.created, run.machine, run.speed_index,
                            json.dumps(run.host), run.status, run.source))
            cursor.execute(self._sql("SELECT id FROM sketch_runs WHERE run_id = ?"), (run.run_id,))
            run_key = cursor.fetchone()[0]
            cursor.executemany(
                self._sql("INSERT INTO sketch_points (run, model, metric, value, low, high, machine_bound, "
                          "higher_is_better, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [(run_key, p.model, p.metric, p.value, p.low, p.high, int(p.machine_bound), int(p.higher_is_better),
                  p.content_hash) for p in points])
        return True

    @staticmethod
    def _run_rows(branches: Sequence[str] | None, statuses: Sequence[str], table: str = "") -> tuple[str, list[Any]]:
        """The WHERE clause choosing runs by status and branch (``table``: the runs table's alias, with its dot)."""
        clauses, values = [f"{table}status IN ({', '.join('?' * len(statuses))})"], list(statuses)
        if branches:
            clauses.append(f"{table}branch IN ({', '.join('?' * len(branches))})")
            values += list(branches)
        return " AND ".join(clauses), values

    def runs(self, branches: Sequence[str] | None = None, statuses: Sequence[str] = ("complete",)) -> list[Run]:
        """Runs in history order (time, then the order they were added)."""
        where, values = self._run_rows(branches, statuses)
        with self._cursor() as cursor:
            cursor.execute(self._sql(f"SELECT {RUN_COLUMNS} FROM sketch_runs WHERE {where} ORDER BY created, id"),
                           values)
            return [_run(row) for row in cursor.fetchall()]

    def series(self, branches: Sequence[str] | None = None) -> dict[SeriesKey, list[SeriesPoint]]:
        """Every (model, metric[, machine]) series of the complete runs, in history order."""
        where, values = self._run_rows(branches, ("complete",), "r.")
        query = (f"SELECT {', '.join('r.' + c.strip() for c in RUN_COLUMNS.split(','))}, p.model, p.metric, "
                 "p.value, p.low, p.high, p.machine_bound, p.content_hash, p.higher_is_better "
                 f"FROM sketch_points p JOIN sketch_runs r ON p.run = r.id WHERE {where} ORDER BY r.created, r.id")
        found: dict[SeriesKey, list[SeriesPoint]] = {}
        with self._cursor() as cursor:
            cursor.execute(self._sql(query), values)
            for row in cursor.fetchall():
                run = _run(row[:9])
                model, metric, value, low, high, machine_bound, content_hash, better = row[9:]
                key = (model, metric, run.machine if machine_bound else "")
                found.setdefault(key, []).append(SeriesPoint(run, value, low, high, content_hash, bool(better)))
        return found

    def close(self) -> None:
        self.connection.close()


def _run(row: Sequence[Any]) -> Run:
    run_id, commit, branch, created, machine, speed_index, host, status, source = row
    return Run(run_id, commit, branch, created, machine, speed_index, json.loads(host or "{}"), status, source)


def is_database_url(target: str) -> bool:
    return urlsplit(target).scheme in ("postgresql", "postgres")


def shown(target: str) -> str:
    """The store as messages name it: a URL without its password."""
    if not is_database_url(target):
        return target
    parts = urlsplit(target)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def open_store(target: str) -> SqlStore:
    """A SQLite file (created with its folder) or a PostgreSQL database by URL; one line when it cannot open."""
    where = shown(target)
    if is_database_url(target):
        password = urlsplit(target).password
        if password:
            register_secret(password)
        try:
            import psycopg
        except ModuleNotFoundError:
            raise SketchBenchError(where, "a PostgreSQL history needs psycopg",
                                   "pip install 'pytest-sketchbench[history]'") from None
        try:
            connection = psycopg.connect(target, connect_timeout=10)
        except psycopg.Error as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SketchBenchError(where, f"cannot connect ({why})",
                                   "check the URL, the server and the credentials") from None
        return SqlStore(connection, "%s", "SERIAL PRIMARY KEY", where)
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqlStore(sqlite3.connect(path, timeout=30), "?", "INTEGER PRIMARY KEY AUTOINCREMENT", where)
    except (OSError, sqlite3.Error) as exc:
        raise SketchBenchError(where, f"not a usable history store ({exc})",
                               "pass a writable path for a new SQLite file, or a postgresql:// URL") from None
