"""Google's stroke formats: the renderer against Google's own bitmaps, raw simplification, the loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from pytest_sketchbench import strokes
from pytest_sketchbench.data import load_dataset, subsample
from pytest_sketchbench.errors import SketchBenchError

# Real drawings (Quick, Draw! by Google, CC BY 4.0): simplified ndjson lines and Google's numpy_bitmap
# rows of the same drawings (found by scripts/check_renderer.py in ../shared/quickdraw-v2).
STROKES = REPO / "tests" / "data" / "ndjson"
BITMAPS = REPO / "tests" / "data" / "numpy_bitmap"
CATEGORIES = ["apple", "bicycle", "cat", "sun"]


def lines_of(category: str) -> list[str]:
    return (STROKES / f"{category}.ndjson").read_text().splitlines()


@pytest.mark.parametrize("category", CATEGORIES)
def test_renders_match_googles_bitmaps_of_the_same_drawings(category):
    google = np.load(BITMAPS / f"{category}.npy").reshape(-1, 28, 28).astype(int)
    ours = np.stack([strokes.render_line(line)[1] for line in lines_of(category)]).astype(int)
    error = np.abs(ours - google).mean(axis=(1, 2))
    assert error.max() < 1.0, error  # grey levels on 0-255; an uncentred drawing is off by 9 or more
    assert np.abs(ours - google).max() <= 20


def test_render_line_reads_the_word_and_draws_white_ink_on_black():
    word, image = strokes.render_line(lines_of("sun")[0])
    assert word == "sun" and image.dtype == np.uint8 and image.shape == (28, 28)
    assert image[0].max() == 0 and image.max() == 255 and (image > 0).mean() < 0.4


def as_raw(drawing: list, scale: float, dx: float, dy: float) -> list:
    """The same drawing as a raw record would hold it: another scale and origin, with times."""
    raw = []
    for xs, ys in drawing:
        raw.append([[x * scale + dx for x in xs], [y * scale + dy for y in ys], list(range(len(xs)))])
    return raw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.sampled_from([(c, i) for c in CATEGORIES for i in range(5)]),
       scale=st.floats(0.4, 4.0), dx=st.floats(-300, 300), dy=st.floats(-300, 300))
def test_a_raw_drawing_renders_like_its_simplified_form(line, scale, dx, dy):
    category, index = line
    drawing = json.loads(lines_of(category)[index])["drawing"]
    raw_strokes, raw = strokes.strokes_of(as_raw(drawing, scale, dx, dy))
    assert raw
    simplified = strokes.simplify_raw(raw_strokes)
    every = np.concatenate(simplified)
    assert every.min() >= 0 and every.max() <= 255 and every.max() == 255
    simple_strokes, was_raw = strokes.strokes_of(drawing)
    assert not was_raw
    difference = np.abs(strokes.render(simplified).astype(int) - strokes.render(simple_strokes).astype(int))
    assert difference.mean() < 4.0


@given(st.lists(st.tuples(st.floats(0, 255), st.floats(0, 255)), min_size=2, max_size=60))
def test_simplification_keeps_the_ends_and_stays_within_epsilon(points):
    stroke = np.array(points)
    kept = strokes._rdp(stroke, 2.0)
    assert np.array_equal(kept[0], stroke[0]) and np.array_equal(kept[-1], stroke[-1])
    # every dropped point lies within epsilon of the simplified polyline
    for point in stroke:
        segments = zip(kept[:-1], kept[1:], strict=True)
        assert min(strokes._distance_to_segment(point[None], a, b)[0] for a, b in segments) <= 2.0 + 1e-9


def test_a_straight_line_simplifies_to_its_ends():
    line = np.column_stack([np.arange(50.0), np.arange(50.0) * 0.5])
    assert len(strokes._rdp(line, 2.0)) == 2


def copy_folder(tmp_path, source, names):
    folder = tmp_path / source.name
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes((source / name.removeprefix("full_simplified_")).read_bytes())
    return folder


def test_a_folder_of_ndjson_files_loads_like_googles_bitmaps_of_them(tmp_path):
    rendered = load_dataset(copy_folder(tmp_path, STROKES, [f"full_simplified_{c}.ndjson" for c in CATEGORIES]))
    google = load_dataset(BITMAPS)
    assert rendered.categories == google.categories == CATEGORIES
    assert np.array_equal(rendered.labels, google.labels)
    assert np.abs(rendered.images.astype(int) - google.images.astype(int)).mean() < 0.5
    assert rendered.meta["rendered_from_strokes"] == CATEGORIES and rendered.exact is None


def test_samples_per_category_keeps_the_same_drawings_from_strokes_and_bitmaps():
    rendered = load_dataset(STROKES, per_category=3, seed=7)
    google = load_dataset(BITMAPS, per_category=3, seed=7)
    assert list(rendered.support()) == [3, 3, 3, 3] and rendered.meta["subsampled_per_category"] == 3
    assert np.abs(rendered.images.astype(int) - google.images.astype(int)).mean(axis=(1, 2)).max() < 1.0
    # and the same drawings that subsampling the whole set keeps
    whole = subsample(load_dataset(BITMAPS), 3, seed=7)
    assert np.array_equal(whole.images, google.images)


def test_a_bad_line_names_the_file_and_line(tmp_path):
    (tmp_path / "cat.ndjson").write_text(lines_of("cat")[0] + "\n" + '{"word": "cat", "drawing": [[[1, 2], [3]]]}\n')
    with pytest.raises(SketchBenchError, match=r"cat.ndjson:2: not a Quick, Draw! drawing record") as error:
        load_dataset(tmp_path)
    assert "simplified or raw format" in str(error.value)
    (tmp_path / "cat.ndjson").write_text("not json\n")
    with pytest.raises(SketchBenchError, match=r"cat.ndjson:1: .*JSONDecodeError"):
        load_dataset(tmp_path)


def test_two_files_for_one_category_are_refused(tmp_path):
    (tmp_path / "cat.ndjson").write_text(lines_of("cat")[0] + "\n")
    np.save(tmp_path / "full_numpy_bitmap_cat.npy", np.load(BITMAPS / "cat.npy"))
    with pytest.raises(SketchBenchError, match="two files for category 'cat'"):
        load_dataset(tmp_path)


def test_category_files_that_differ_only_by_case_are_one_category(tmp_path):
    np.save(tmp_path / "cat.npy", np.load(BITMAPS / "cat.npy"))
    np.save(tmp_path / "Cat.npy", np.load(BITMAPS / "cat.npy"))
    with pytest.raises(SketchBenchError, match=r"two files for category '\w+': (Cat|cat).npy and (Cat|cat).npy"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("make", ["folder", "broken link"])
def test_a_stroke_file_that_is_not_a_file_is_one_line(tmp_path, make):
    np.save(tmp_path / "sun.npy", np.load(BITMAPS / "sun.npy"))
    if make == "folder":
        (tmp_path / "cat.ndjson").mkdir()
    else:
        (tmp_path / "cat.ndjson").symlink_to(tmp_path / "gone.ndjson")
    with pytest.raises(SketchBenchError, match=r"cat.ndjson: is not a readable file"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(("line", "problem"), [
    ('{"drawing": ' + "[" * 100_000 + "]" * 100_000 + "}", "RecursionError"),
    (json.dumps({"drawing": [[list(range(30_000)), list(range(30_000))]]}), "a stroke of 30,000 points"),
    (json.dumps({"drawing": [[[0, 1e300], [0, 1]]]}), "coordinates must be finite numbers"),
    (json.dumps({"drawing": [[[x % 250 for x in range(3_000)], [x % 7 for x in range(3_000)]]]}),
     "3,000 points to draw (at most 2,000)"),
])
def test_hostile_stroke_lines_are_refused_before_drawing(tmp_path, line, problem):
    """Each is one line naming file:line, at once: 20,000 points took 84 s to draw, a million over 400 s."""
    import time

    (tmp_path / "cat.ndjson").write_text(lines_of("cat")[0] + "\n" + line + "\n")
    started = time.monotonic()
    with pytest.raises(SketchBenchError, match=r"cat.ndjson:2: not a Quick, Draw! drawing record") as error:
        load_dataset(tmp_path)
    assert problem in str(error.value) and time.monotonic() - started < 10


def test_rendering_says_where_it_is(tmp_path, monkeypatch):
    import pytest_sketchbench.data as data

    said: list[str] = []
    load_dataset(STROKES, progress=said.append)
    assert said == ["rendering strokes: 0 of 23 drawings done, now apple.ndjson"]  # then every 5 s at most
    monkeypatch.setattr(data, "PROGRESS_EVERY_S", 0.0)
    said.clear()
    load_dataset(STROKES, per_category=2, progress=said.append)
    assert said[-1] == "rendering strokes: 6 of 8 drawings done, now sun.ndjson" and len(said) == 4


def test_sigterm_while_rendering_ends_the_run_at_once(tmp_path):
    """A folder whose drawings take minutes to render: SIGTERM after the first progress line ends the run within
    seconds, as an interruption (exit 2), not a kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    slow = json.dumps({"word": "cat", "drawing": [[[x % 250 for x in range(1_900)], [(x * 7) % 250
                                                                                    for x in range(1_900)]]]})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cat.ndjson").write_text((slow + "\n") * 200)
    (tmp_path / "data" / "sun.ndjson").write_text((slow + "\n") * 200)
    (tmp_path / "test_accuracy.py").write_text((REPO / "benchmarks" / "test_accuracy.py").read_text())
    process = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path),
                                f"--sketch-data={tmp_path / 'data'}", "--sketch-models=onnx", f"--rootdir={tmp_path}"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = []
    for line in process.stdout:
        output.append(line)
        if "sketchbench: rendering strokes: 0 of 400 drawings done, now cat.ndjson" in line:
            break
    else:
        pytest.fail("".join(output))
    time.sleep(1.0)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert process.returncode == 2, "".join(output) + rest
    assert "KeyboardInterrupt" in rest and "SIGTERM" in rest
