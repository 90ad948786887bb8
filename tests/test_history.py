"""Benchmark history: the store (SQLite and a real PostgreSQL server), the figures a run adds, change points and
drifts, and ``sketchbench history add/check/show`` on stored JSON reports."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_server import postgres_server, why_not

from conftest import REPO, run_options
from pytest_sketchbench.cli import main
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.history.analysis import HistorySettings, analyse, news, settings_from
from pytest_sketchbench.history.changes import Settings, find_changes, new_point
from pytest_sketchbench.history.points import Point, points_of
from pytest_sketchbench.history.store import Run, open_store, shown

V1_REPORT = REPO / "tests" / "data" / "golden" / "v1_report.json"


@pytest.fixture(scope="module")
def postgres_url():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "nested" / "history.db")
    url = request.getfixturevalue("postgres_url")
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:  # the module's server, emptied for each test
        connection.execute("DROP TABLE IF EXISTS sketch_points, sketch_runs, sketch_meta")
    return url


def run(index: int, branch: str = "main", status: str = "complete", machine: str = "cpu: EPYC") -> Run:
    return Run(f"run-{index}", f"{index:040x}", branch, f"2026-12-{1 + index // 24:02d}T{index % 24:02d}:00:00+00:00",
               machine, 12000.0, {"unfit": []}, status)


def test_a_store_keeps_runs_once_in_order_and_serves_series(store_target):
    store = open_store(store_target)
    try:
        for index in (2, 0, 1):  # added out of order: a series follows time, not insertion
            points = [Point("onnx", "latency_ratio:calibration@1", 10.0 + index, 9.5 + index, 10.5 + index),
                      Point("onnx", "p50_ms@1", 1.0 + index, machine_bound=True)]
            assert store.add_run(run(index), points)
        assert not store.add_run(run(1), [])  # the same report again: nothing added
        store.add_run(run(3, status="interrupted"), [Point("onnx", "p50_ms@1", 99.0, machine_bound=True)])
        store.add_run(run(4, branch="feature"), [Point("onnx", "p50_ms@1", 4.0, machine_bound=True)])
        series = store.series(["main"])
        ratio = series[("onnx", "latency_ratio:calibration@1", "")]
        assert [p.value for p in ratio] == [10.0, 11.0, 12.0] and ratio[0].low == 9.5
        assert [p.value for p in series[("onnx", "p50_ms@1", "cpu: EPYC")]] == [1.0, 2.0, 3.0]  # not the interrupted
        assert [p.value for p in store.series(["main", "feature"])[("onnx", "p50_ms@1", "cpu: EPYC")]][-1] == 4.0
        assert [r.run_id for r in store.runs(statuses=("interrupted",))] == ["run-3"]
        assert store.runs(["main"])[0].host == {"unfit": []}
    finally:
        store.close()


def test_a_database_url_never_shows_its_password(postgres_url):
    assert "s3cret-pw" in postgres_url and "s3cret-pw" not in shown(postgres_url)
    with pytest.raises(SketchBenchError) as refused:
        open_store(postgres_url.replace("s3cret-pw", "wrong-password"))
    assert "cannot connect" in str(refused.value) and "wrong-password" not in str(refused.value)


def test_an_unwritable_store_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SketchBenchError, match="not a usable history store"):
        open_store(str(blocker / "history.db"))


def test_a_run_adds_its_travelling_and_machine_bound_figures():
    from test_codec import fixed_record

    points = {p.metric: p for p in points_of(fixed_record())}
    assert points["accuracy"].value == 0.75 and points["accuracy"].low < 0.75 < points["accuracy"].high
    assert points["accuracy:dog"].value == 0.5 and points["accuracy"].higher_is_better
    assert points["latency_ratio:calibration@1"].value == 12.9 and points["latency_ratio:calibration@1"].high == 13.1
    assert "latency_ratio:baseline:cnn@v2@32" not in points  # a same-run A/B is no trend
    assert points["p50_ms@1"].machine_bound and not points["accuracy"].machine_bound
    assert points["memory_growth_mb"].value == 12.0 and points["size_mb"].value == 42e-6
    assert {p.content_hash for p in points.values()} == {"ab" * 32}


def noisy(n: int, seed: int, noise: float = 0.02) -> np.ndarray:
    return 10.0 * (1 + noise * np.random.default_rng(seed).standard_normal(n))


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 30), st.sampled_from([0.10, -0.10, 0.25]), st.integers(0, 10_000))
def test_a_step_well_above_the_noise_is_found_where_it_is(at, size, seed):
    values = noisy(40, seed)
    values[at:] *= 1 + size
    found = find_changes(values)
    if any(c.kind == "drift" and c.start <= at <= c.index for c in found):
        return  # found where it is, under the name drift: the known labelling gap (the xfail test below)
    changes = [c for c in found if c.kind == "step" and abs(c.index - at) <= 3]  # issue: within 5
    # found once; or, rarely, split in two where a few runs next to it happened to sit between the levels (seen:
    # seed 842, runs 19-21 at +4 %, each step significant) — both alerts then point at it and add up to it.
    # Elsewhere a rare false alert may stand (measured apart)
    assert 1 <= len(changes) <= 2, found
    assert changes[-1].after / changes[0].before - 1 == pytest.approx(size, abs=0.05)  # 8+ runs of 2 % noise


@pytest.mark.xfail(strict=True, reason="known: a step 1 run inside a 10-run drift window is labelled a drift")
def test_a_step_near_the_end_of_a_drift_window_is_a_step_not_a_drift():
    """The example hypothesis found in CI (at=29, size=-0.1, seed=935): the step is found (run 29, p 2e-8), but a
    drift over runs 28-37 swallows it, because one level change only beats a line there by less than the drift
    rule asks. The alert is at the right place under the wrong name; left open (issue #29's rule, not changed)."""
    values = noisy(40, 935)
    values[29:] *= 0.9
    changes = find_changes(values)
    assert [c.kind for c in changes] == ["step"] and abs(changes[0].index - 29) <= 3, changes


def test_unchanged_series_raise_almost_no_alert():
    """2,000 points of 2 % noise: the false-alert rate stays under 1 per 100 points."""
    alerts = sum(len(find_changes(noisy(100, seed))) for seed in range(20))
    assert alerts / 2000 * 100 <= 1.0


def test_a_drift_that_every_pairwise_gate_passes_is_reported():
    values = noisy(40, 7) * np.concatenate([np.ones(15), 1.03 ** np.arange(1, 9), np.full(17, 1.03 ** 8)])
    changes = find_changes(values)
    assert [c.kind for c in changes] == ["drift"], changes
    assert 10 <= changes[0].start <= 16 and changes[0].relative > 0.15


def test_a_change_smaller_than_the_minimum_is_not_news():
    values = noisy(40, 3, noise=0.001)
    values[20:] *= 1.02
    assert [c.index for c in find_changes(values, settings=Settings(min_change=0.01))] == [20]
    assert find_changes(values, settings=Settings(min_change=0.03)) == []


def test_memory_growth_moving_off_zero_by_a_page_is_not_news_and_by_the_noise_floor_is():
    """Found under -n 2: a run whose RSS grew by one page (0.0039 MB) after four that grew by 0 was an infinite
    relative change with p = 0. Memory has the absolute floor the baseline gate uses (memory_floor_mb)."""
    memory = HistorySettings().for_metric("memory_growth_mb")
    assert new_point(np.array([0.0] * 4 + [0.00390625]), memory) is None
    assert find_changes([0.0] * 8 + [0.00390625] * 4, settings=memory) == []
    (change,) = find_changes([0.0] * 8 + [25.0] * 4, settings=memory)
    assert change.index == 8
    assert new_point(np.array([0.0] * 4 + [25.0]), memory) is not None
    assert new_point(np.array([0.0] * 4 + [0.00390625]), HistorySettings().for_metric("size_mb")) is not None


def test_a_deterministic_figure_changes_at_its_first_different_run():
    values = [0.9241] * 12 + [0.9142] * 4  # accuracy on the same drawings: no noise at all
    (change,) = find_changes(values, settings=Settings(min_change=0.005))
    assert change.index == 12 and change.kind == "step"


@pytest.mark.parametrize(("table", "problem"), [
    ({"metric": ["accuracy"]}, "unknown key(s) metric"),
    ({"metrics": "accuracy"}, "'metrics' must be a list"),
    ({"min_change": -1}, "'min_change' must be a relative change"),
    ({"window": 1}, "'window' must be a whole number of runs, 3 to 1000"),
    ({"alpha": 0.9}, "'alpha' must be a significance level"),
])
def test_the_history_table_is_checked(table, problem):
    with pytest.raises(SketchBenchError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        settings_from(table, "thresholds.toml")


def reports(tmp_path, ratios: list[float], accuracy_drop_at: int | None = None) -> list[str]:
    """Stored JSON reports of one ONNX model (the v1 golden run) with a latency ratio per run."""
    template = json.loads(V1_REPORT.read_text())
    paths = []
    for index, ratio in enumerate(ratios):
        report = copy.deepcopy(template)
        metadata = report["benchmark_metadata"]
        metadata.update(run_id=f"r{index:03d}", git_commit=f"{index:02d}" + "c0ffee" * 6,
                        timestamp=f"2026-11-{1 + index // 24:02d}T{index % 24:02d}:00:00+00:00")
        model = report["model_results"]["onnx"]
        model["relative_speed"] = {"calibration@1": {"ratio": ratio, "ci_low": ratio * 0.99, "ci_high": ratio * 1.01}}
        if accuracy_drop_at is not None and index >= accuracy_drop_at:
            model["accuracy_results"]["accuracy"] -= 0.01
        path = tmp_path / f"run{index:03d}.json"
        path.write_text(json.dumps(report))
        paths.append(str(path))
    return paths


def test_history_add_check_and_show_find_the_slowdown_and_name_its_commit(tmp_path, capsys, store_target):
    ratios = list(noisy(20, 11) * 1.3)
    ratios[16:] = [r * 1.12 for r in ratios[16:]]
    paths, db = reports(tmp_path, ratios), store_target
    assert main(["history", "add", *paths[:12], "--db", db, "--branch", "main"]) == 0
    assert main(["history", "check", "--db", db]) == 0  # nothing yet
    assert main(["history", "add", *paths, "--db", db, "--branch", "main"]) == 0  # the first 12 again: skipped
    out = capsys.readouterr().out
    assert out.count("already stored") == 12 and out.count(": added as run") == 20
    assert main(["history", "check", "--db", db]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION onnx latency_ratio:calibration@1: step of +1" in out and "at commit 16c0ffee" in out
    assert main(["history", "show", "--db", db, "--html", str(tmp_path / "t.html"),
                 "--markdown", str(tmp_path / "t.md")]) == 0
    page = (tmp_path / "t.html").read_text()
    assert "onnx · latency_ratio:calibration@1" in page and "data:image/png;base64," in page
    assert "❌" in (tmp_path / "t.md").read_text()
    assert "s3cret-pw" not in out + capsys.readouterr().out + page  # a URL's password stays out of every output


def test_history_check_reads_the_config_table(tmp_path, capsys):
    ratios = list(noisy(20, 5) * 1.3)
    ratios[16:] = [r * 1.12 for r in ratios[16:]]
    db = str(tmp_path / "h.db")
    main(["history", "add", *reports(tmp_path, ratios), "--db", db])
    (tmp_path / "t.toml").write_text('[history]\nmin_change = { "latency_ratio:*" = 0.2 }\n')
    assert main(["history", "check", "--db", db, "--config", str(tmp_path / "t.toml")]) == 0
    (tmp_path / "t.toml").write_text('[history]\nmetrics = ["accuracy"]\n')
    assert main(["history", "check", "--db", db, "--config", str(tmp_path / "t.toml")]) == 0
    (tmp_path / "bad.toml").write_text('[history]\nwindow = "ten"\n')
    assert main(["history", "check", "--db", db, "--config", str(tmp_path / "bad.toml")]) == 2
    assert "[history]: 'window' must be a whole number" in capsys.readouterr().err


def test_an_accuracy_drop_of_one_point_is_found_in_the_newest_run(tmp_path):
    paths = reports(tmp_path, [13.0] * 15, accuracy_drop_at=14)
    store = open_store(str(tmp_path / "h.db"))
    from pytest_sketchbench.cli import read_report
    from pytest_sketchbench.history_cli import run_of_report

    for path in paths:
        store.add_run(*run_of_report(path, read_report(path), None, "main", None))
    findings = analyse(store.series(), settings_from({}, "t"))
    store.close()
    (finding,) = [f for f in news(findings, settings_from({}, "t")) if f.key[1] == "accuracy"]
    assert finding.change.kind == "new" and finding.regression and finding.change.relative < 0


REGISTER = '''
from centroid_plugin import CentroidModel
from pytest_sketchbench import register_model

register_model("centroid", weights="centroid.npz"{degrade})(CentroidModel)
'''


@pytest.mark.slow  # 6-9 s on the 2-core EPYC: out of the default subset (≤ 4 min)
def test_pytest_runs_build_the_history_and_the_last_one_fails_on_a_drop(centroid_project):
    """Five runs of the same model, then one where it answers worse: ``--sketch-history-check`` fails that run,
    naming the figure, the commit and the levels on both sides."""

    centroid_project.makepyfile(test_bench='''
        def test_accuracy(sketch_predictions, sketch_thresholds):
            sketch_thresholds.check_accuracy(sketch_predictions)
    ''')
    args = (*run_options(20), "--sketch-models=centroid", "--sketch-history=runs/h.db", "--sketch-history-check")
    centroid_project.makeconftest(REGISTER.format(degrade=""))
    for _ in range(5):
        result = centroid_project.runpytest(*args)
        assert result.ret == 0, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["*history: run added to runs/h.db (complete, * figures, branch *)*"])
    centroid_project.makeconftest(REGISTER.format(degrade=", degrade=3"))
    result = centroid_project.runpytest(*args)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*history: REGRESSION centroid accuracy: newest run off its history of -* "
                                 "(regression) at commit * (run 6 of 6): 0.* → 0.*"])
    store = open_store(str(centroid_project.path / "runs" / "h.db"))
    assert len(store.runs()) == 6 and len(store.series()[("centroid", "accuracy", "")]) == 6
    store.close()


def test_history_check_needs_a_history(pytester):
    result = pytester.runpytest("--sketch-history-check", "-p", "no:cacheprovider")
    assert result.ret == 4 and "--sketch-history-check: needs the history to check" in result.stderr.str()


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("chromium") is None, reason="run tests/setup-system.sh for Chromium")
def test_the_trend_page_opens_offline_in_chromium_with_every_chart_drawn(tmp_path):
    import base64
    import io
    import re

    from PIL import Image
    from test_reports import _chromium

    ratios = list(noisy(20, 2) * 1.3)
    ratios[12:] = [r * 1.15 for r in ratios[12:]]
    db = str(tmp_path / "h.db")
    main(["history", "add", *reports(tmp_path, ratios), "--db", db])
    page = tmp_path / "trend.html"
    assert main(["history", "show", "--db", db, "--html", str(page)]) == 0
    assert "http://" not in page.read_text() and "https://" not in page.read_text()
    dom = _chromium("--dump-dom", f"file://{page}", profile=tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    figures = re.findall(r"<figure class=\"trend\" data-series=\"([^\"]+)\"><img alt=\"[^\"]*\" "
                         r"src=\"data:image/png;base64,([^\"]+)\"", dom.stdout)
    assert {series for series, _ in figures} >= {"onnx · accuracy", "onnx · latency_ratio:calibration@1"}
    for series, data in figures:  # every chart is a PNG the browser got whole, with something drawn on it
        image = Image.open(io.BytesIO(base64.b64decode(data))).convert("L")
        assert image.size[0] > 300 and len(image.getcolors(maxcolors=1 << 16) or []) > 10, series
    assert "step of +1" in dom.stdout and "onnx · latency_ratio:calibration@1" in dom.stdout
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,3000", f"file://{page}", profile=tmp_path / "p2")
    assert shot.exists() and shot.stat().st_size > 20000
