"""The bundled split, the loaders and their errors, and preprocessing."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BUNDLED, REPO
from pytest_sketchbench import preprocess
from pytest_sketchbench.data import Dataset, check_model_categories, load_dataset, subsample, validate_dataset
from pytest_sketchbench.errors import SketchBenchError

sys.path.insert(0, str(REPO / "data"))
import build_dataset  # noqa: E402


def test_bundled_split_matches_its_card(bundled):
    counts = json.loads((REPO / "data" / "split_counts.json").read_text())["counts"]
    assert bundled.categories == json.loads((BUNDLED.parent / "categories.json").read_text())
    assert len(bundled.categories) == 22 and "elephant" not in bundled.categories
    assert dict(zip(bundled.categories, bundled.support().tolist(), strict=True)) == {
        c: v["test"] for c, v in counts.items()}
    assert min(bundled.support()) >= 90 and bundled.images.dtype == np.uint8


def test_bundled_split_has_no_duplicate_drawing(bundled):
    digests = {hashlib.sha1(row.tobytes()).digest() for row in bundled.images}
    assert len(digests) == len(bundled)


def test_approximate_rendering_flags(bundled):
    by_category = {c: bundled.exact[bundled.labels == i] for i, c in enumerate(bundled.categories)}
    assert not by_category["tiger"].any() and not by_category["moon"].any()
    assert by_category["cat"].all() and 0 < by_category["lion"].mean() < 1


def test_split_sizes_are_disjoint_and_complete():
    for n in (1, 7, 450, 900, 4500, 5355):
        train, val, test = build_dataset.split_sizes(n)
        assert train + val + test == n and min(train, val, test) >= 0


def test_check_disjoint_refuses_a_drawing_in_two_splits():
    row = np.arange(784, dtype=np.uint8)[None]
    splits = {"train": {"images": row, "labels": np.array([0])}, "test": {"images": row, "labels": np.array([1])}}
    with pytest.raises(SystemExit, match="duplicate drawing: test/dog equals train/cat"):
        build_dataset.check_disjoint(splits, ["cat", "dog"])


@pytest.mark.skipif(not build_dataset.DEFAULT_SOURCE.exists(), reason="../shared/quickdraw not beside the repo")
def test_rebuild_is_byte_identical():
    assert build_dataset.main(["--check"]) == 0


def test_npy_folder_in_numpy_bitmap_layout(tmp_path, bundled):
    for i, name in enumerate(bundled.categories[:3]):
        np.save(tmp_path / f"{name.replace(' ', '_')}.npy", bundled.images[bundled.labels == i][:5].reshape(-1, 784))
    dataset = load_dataset(tmp_path)
    assert dataset.categories == sorted(bundled.categories[:3]) and len(dataset) == 15


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not a zip"), "cannot read the .npz archive"),
    (lambda p: np.savez(p, labels=np.zeros(3, int)), "missing array 'images'"),
    (lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.float32), labels=np.zeros(3, int),
                        categories=np.array(["a"])), "drawings must be uint8"),
    (lambda p: np.savez(p, images=np.zeros((3, 27, 27), np.uint8), labels=np.zeros(3, int),
                        categories=np.array(["a"])), "shape (N, 784) or (N, 28, 28)"),
    (lambda p: np.savez(p, images=np.zeros((3, 28, 28), np.uint8), labels=np.array([0, 1, 5]),
                        categories=np.array(["a", "b"])), "labels range 0..5 but there are 2 categories"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28), np.uint8), labels=np.array([0, 0]),
                        categories=np.array(["a", "b"])), "categories with no drawings: b"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28), np.uint8), labels=np.array([0, 1]),
                        categories=np.array(["a", "a"])), "duplicate category names: a"),
    (lambda p: np.savez(p, images=np.full((2, 28, 28), 255, np.uint8), labels=np.array([0, 1]),
                        categories=np.array(["a", "b"])), "look inverted"),
    (lambda p: np.savez(p, images=np.zeros((2, 28, 28), np.uint8), labels=np.array([0, 1])), "no category names"),
])
def test_bad_npz_gives_one_actionable_line(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(SketchBenchError) as error:
        load_dataset(path)
    text = str(error.value)
    assert message in text and str(path) in text and " — " in text and "\n" not in text


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(SketchBenchError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "cat.npy").write_bytes(b"garbage")
    with pytest.raises(SketchBenchError, match=r"cat.npy: cannot read the .npy file"):
        load_dataset(tmp_path)
    (tmp_path / "categories.json").write_text("{broken")
    with pytest.raises(SketchBenchError, match="not valid JSON"):
        load_dataset(tmp_path, tmp_path / "categories.json")


def test_model_category_list_mismatch_is_detected(bundled):
    check_model_categories(bundled, "m", bundled.categories)
    with pytest.raises(SketchBenchError, match="same categories in another order"):
        check_model_categories(bundled, "m", bundled.categories[::-1])
    with pytest.raises(SketchBenchError, match="model has no class for: cat"):
        check_model_categories(bundled, "m", bundled.categories[1:])


@settings(max_examples=40, deadline=None)
@given(per_category=st.integers(1, 400), seed=st.integers(0, 2**16))
def test_subsample_is_stratified_and_deterministic(bundled, per_category, seed):
    small = subsample(bundled, per_category, seed)
    assert (small.support() == np.minimum(bundled.support(), per_category)).all()
    again = subsample(bundled, per_category, seed)
    assert np.array_equal(small.images, again.images)
    validate_dataset(small)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=30))
def test_validate_accepts_any_label_layout_that_covers_categories(labels):
    labels = np.array(labels)
    categories = [f"c{i}" for i in range(labels.max() + 1)]
    dataset = Dataset(np.zeros((len(labels), 28, 28), np.uint8), labels, categories)
    if set(labels) == set(range(len(categories))):
        validate_dataset(dataset)
    else:
        with pytest.raises(SketchBenchError, match="categories with no drawings"):
            validate_dataset(dataset)


def test_grayscale_polarity_and_range(bundled):
    x = preprocess.to_grayscale(bundled.images[:8])
    assert x.shape == (8, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0 and (x > 0.5).mean() < 0.5  # ink is 1, mostly background


@pytest.mark.parametrize("size", [(28, 28), (64, 64), (96, 80), (224, 224)])
def test_rgb_any_size_black_ink_on_white(bundled, size):
    x = preprocess.to_rgb(bundled.images[:4], *size)
    assert x.shape == (4, *size, 3) and 0.0 <= x.min() and x.max() <= 1.0
    assert np.median(x) == 1.0 and np.array_equal(x[..., 0], x[..., 2])  # white background, gray
    if size == (28, 28):
        assert np.allclose(x[..., 0], 1 - bundled.images[:4] / 255.0, atol=1e-6)


def test_png_base64_round_trip(bundled):
    import base64
    import io

    from PIL import Image

    encoded = preprocess.to_png_base64(bundled.images[:2], scale=1)
    image = np.array(Image.open(io.BytesIO(base64.b64decode(encoded[0]))))
    assert np.array_equal(image, 255 - bundled.images[0])


def test_bundled_file_is_the_default(bundled):
    assert bundled.source == str(BUNDLED)
