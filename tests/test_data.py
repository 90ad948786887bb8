"""The bundled split, the loaders and their errors, and preprocessing."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BUNDLED, REPO, run_options
from pytest_sketchbench import preprocess
from pytest_sketchbench.data import Dataset, category_columns, load_dataset, subsample, validate_dataset
from pytest_sketchbench.errors import SketchBenchError

sys.path.insert(0, str(REPO / "data"))
import build_dataset  # noqa: E402


def test_bundled_split_matches_its_card(bundled):
    counts = json.loads((REPO / "data" / "split_counts.json").read_text())["counts"]
    assert bundled.categories == json.loads((BUNDLED.parent / "categories.json").read_text())
    assert len(bundled.categories) == 23 and "elephant" in bundled.categories  # quickdraw-v2
    assert dict(zip(bundled.categories, bundled.support().tolist(), strict=True)) == {
        c: v["test"] for c, v in counts.items()}
    assert min(bundled.support()) >= 90 and bundled.images.dtype == np.uint8


def test_bundled_split_has_no_duplicate_drawing(bundled):
    digests = {hashlib.sha1(row.tobytes()).digest() for row in bundled.images}
    assert len(digests) == len(bundled)


def test_approximate_rendering_flags(bundled):
    by_category = {c: bundled.exact[bundled.labels == i] for i, c in enumerate(bundled.categories)}
    assert not by_category["elephant"].any() and not by_category["moon"].any()
    assert by_category["tiger"].all() and by_category["cat"].all() and 0 < by_category["lion"].mean() < 1


def test_split_sizes_are_disjoint_and_complete():
    for n in (1, 7, 450, 900, 4500, 5355):
        train, val, test = build_dataset.split_sizes(n)
        assert train + val + test == n and min(train, val, test) >= 0


def test_check_disjoint_refuses_a_drawing_in_two_splits():
    row = np.arange(784, dtype=np.uint8)[None]
    splits = {"train": {"images": row, "labels": np.array([0])}, "test": {"images": row, "labels": np.array([1])}}
    with pytest.raises(SystemExit, match="duplicate drawing: test/dog equals train/cat"):
        build_dataset.check_disjoint(splits, ["cat", "dog"])


@pytest.mark.skipif(not build_dataset.DEFAULT_SOURCE.exists(), reason="../shared/quickdraw-v2 not beside the repo")
def test_rebuild_reproduces_the_committed_split():
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


def test_model_categories_are_matched_by_name(bundled):
    assert category_columns(bundled, "m", bundled.categories) is None
    assert category_columns(bundled, "m", None) is None
    reversed_names = bundled.categories[::-1]
    columns = category_columns(bundled, "m", reversed_names)
    assert [reversed_names[c] for c in columns] == bundled.categories  # same set, other order: remapped
    spelt = [c.upper().replace(" ", "_") for c in reversed_names] + ["giraffe", "The_Mona-Lisa"]
    assert list(category_columns(bundled, "m", spelt)) == list(columns)  # superset, other spelling
    assert category_columns(bundled, "m", bundled.categories[1:])[0] == -1  # cat: left out, not refused
    with pytest.raises(SketchBenchError, match="model has no class for: cat.*strict_categories = true forbids"):
        category_columns(bundled, "m", bundled.categories[1:], strict=True)
    with pytest.raises(SketchBenchError, match="model has no class for: cat, dog"):
        category_columns(bundled, "m", ["giraffe"])  # no overlap at all


def test_remapped_outputs_score_like_the_original(bundled, centroid_weights):
    from pytest_sketchbench.measure import accuracy_pass
    from pytest_sketchbench.models.base import ModelInfo, ModelPlugin

    weights, _ = centroid_weights

    class Linear(ModelPlugin):
        runtime = "numpy"
        options = ("w",)

        def load(self):
            pass

        def infer(self, prepared):
            return prepared.reshape(len(prepared), -1) @ self.config["w"] * 20.0

        def describe(self):
            return ModelInfo(self.name, self.runtime, "", "grayscale", [None, 28, 28, 1], None, None, 0, 0)

    small = subsample(bundled, 20)
    original = accuracy_pass(Linear("a", {"w": weights}), small, 64)
    order = np.random.default_rng(0).permutation(len(bundled.categories))  # the model's own class order
    names = [bundled.categories[i] for i in order] + ["giraffe"]
    extra = weights[:, order[:1]] * 1.05  # "giraffe": a copy of one category that outscores it
    shuffled = Linear("b", {"w": np.concatenate([weights[:, order], extra], axis=1)})
    shuffled.categories = names
    remapped = accuracy_pass(shuffled, small, 64, category_columns(small, "b", names))
    assert np.array_equal(remapped.predicted, original.predicted)  # closed-set: the best of the dataset's
    outside = remapped.open_predicted == -1  # open-set: "giraffe" wherever it won
    assert outside.any() and np.array_equal(remapped.open_predicted[~outside], original.predicted[~outside])


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


def test_a_folder_of_npy_files_in_alphabetical_order_scores_like_the_bundled_split(centroid_project, bundled,
                                                                                   tmp_path):
    """Google's layout (one <category>.npy per category, no categories.json): matched by name, same figure."""
    import json as json_module

    folder = tmp_path / "npy"
    folder.mkdir()
    for label, category in enumerate(bundled.categories):
        np.save(folder / f"{category}.npy", bundled.images[bundled.labels == label].reshape(-1, 784))
    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.makepyfile("def test_accuracy(sketch_predictions):\n    pass\n")
    accuracy = {}
    for name, data in (("bundled", BUNDLED), ("folder", folder)):
        result = centroid_project.runpytest("--sketch-models=centroid", f"--sketch-data={data}", "-p",
                                            "no:cacheprovider", f"--sketch-json={name}.json")
        result.assert_outcomes(passed=1)
        report = json_module.loads((centroid_project.path / f"{name}.json").read_text())["model_results"]
        accuracy[name] = report["centroid"]["accuracy_results"]["accuracy"]
        assert (report["centroid"]["category_mapping"] == "by name") is (name == "folder")
    assert accuracy["folder"] == accuracy["bundled"]



def test_googles_stroke_files_score_like_googles_bitmaps_of_the_same_drawings(centroid_project):
    """A folder of simplified ndjson files (rendered by the plugin) against Google's rows of those drawings."""
    import json as json_module

    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.makepyfile("def test_accuracy(sketch_predictions):\n    pass\n")
    # limits written for the bundled split: tiger is not in these four categories, so it is said, not an error
    centroid_project.makefile(".toml", thresholds="[centroid.category_accuracy]\ntiger = 0.68\ncat = 0.1\n")
    figures = {}
    for name in ("ndjson", "numpy_bitmap"):
        folder = REPO / "tests" / "data" / name
        result = centroid_project.runpytest("--sketch-models=centroid", f"--sketch-data={folder}",
                                            "-p", "no:cacheprovider", f"--sketch-json={name}.json")
        result.assert_outcomes(passed=1)
        if name == "ndjson":
            result.stdout.fnmatch_lines(["*data *; 4 categories rendered from Google's stroke files (apple, bicycle, "
                                         "cat, sun)*",
                                         "*per-category limits not applied (no such category in this dataset): tiger"])
        record = json_module.loads((centroid_project.path / f"{name}.json").read_text())["model_results"]["centroid"]
        figures[name] = (record["accuracy_results"]["accuracy"], record["accuracy_results"]["n_samples"])
    assert figures["ndjson"] == figures["numpy_bitmap"] and figures["ndjson"][1] == 23


WIDE_PLUGIN = '''
import numpy as np
from pytest_sketchbench import ModelInfo, ModelPlugin, register_model

class Wide(ModelPlugin):
    """The centroid classifier in its own class order, plus one class the dataset lacks."""
    runtime = "numpy"
    options = ("weights",)

    def load(self):
        self.categories = self.read_categories([])  # from the config's class_names.txt
        data = np.load(self.config["weights"])
        known = [str(c) for c in data["categories"]]
        mine = [c.lower().replace("_", " ") for c in self.categories]
        columns = [known.index(c) if c in known else 0 for c in mine]  # giraffe: a copy of cat that outscores it
        self.w = data["w"][:, columns] * np.array([1.0 if c in known else 1.05 for c in mine])

    def infer(self, prepared):
        return prepared.reshape(len(prepared), -1) @ self.w * 20.0

    def describe(self):
        return ModelInfo(self.name, self.runtime, "", "grayscale", [None, 28, 28, 1], self.categories, None, 0, 0)
'''


def test_a_model_with_more_classes_is_read_closed_set_with_the_open_set_figure_beside(centroid_project, bundled):
    names = [c.upper().replace(" ", "_") for c in bundled.categories[::-1]] + ["giraffe"]
    (centroid_project.path / "class_names.txt").write_text("\n".join(names) + "\n")
    centroid_project.makepyfile(wide_plugin=WIDE_PLUGIN)
    centroid_project.makefile(".toml", thresholds='''
        [models.wide]
        plugin = "wide_plugin:Wide"
        weights = "centroid.npz"
        categories = "class_names.txt"
    ''')
    centroid_project.makepyfile("def test_accuracy(sketch_predictions):\n    pass\n")
    result = centroid_project.runpytest("--sketch-models=wide", *run_options(None),
                                        "--sketch-json=r.json", "--sketch-html=r.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*categories matched by name, closed-set: the best of the dataset's categories "
                                 "(1 more model classes ignored); open-set acc 0.*, *% of answers outside the "
                                 "dataset's categories"])
    record = json.loads((centroid_project.path / "r.json").read_text())["model_results"]["wide"]
    open_set = record["accuracy_results"]["open_set"]
    assert 0 < open_set["outside_rate"] < 1 and open_set["accuracy"] < record["accuracy_results"]["accuracy"]
    assert "open-set acc" in (centroid_project.path / "r.html").read_text()
    with open(centroid_project.path / "thresholds.toml", "a") as config:
        config.write('\ncategory_mode = "open"\n')
    gated = centroid_project.runpytest("--sketch-models=wide", *run_options(None), "--sketch-json=open.json")
    gated.stdout.fnmatch_lines(["*open-set acc 0.* (the gated figure)*"])
    record = json.loads((centroid_project.path / "open.json").read_text())["model_results"]["wide"]
    assert record["accuracy_results"]["accuracy"] == open_set["accuracy"]


def test_drawings_of_a_category_the_model_lacks_are_left_out_and_said(centroid_project, bundled, tmp_path):
    names = [c for c in bundled.categories if c != "cat"]
    (centroid_project.path / "class_names.txt").write_text("\n".join(names) + "\n")
    centroid_project.makepyfile(wide_plugin=WIDE_PLUGIN)
    table = '''
        [models.nocat]
        plugin = "wide_plugin:Wide"
        weights = "centroid.npz"
        categories = "class_names.txt"
    '''
    centroid_project.makefile(".toml", thresholds=table)
    centroid_project.makepyfile("def test_accuracy(sketch_predictions):\n    pass\n")
    args = ("--sketch-models=nocat", *run_options(5))
    result = centroid_project.runpytest(*args, "--sketch-json=r.json", f"--sketch-save-baseline={tmp_path}/b.json.gz")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*categories matched by name; 5 drawings of cat left out (the model has no such "
                                 "class)*", "*nocat not saved in the baseline: it was scored on part of the test set*"])
    record = json.loads((centroid_project.path / "r.json").read_text())["model_results"]["nocat"]
    assert record["accuracy_results"]["n_samples"] == 5 * (len(bundled.categories) - 1)
    assert "cat" not in record["accuracy_results"]["per_category"]
    centroid_project.makefile(".toml", thresholds=table + "        strict_categories = true\n")
    strict = centroid_project.runpytest(*args)
    strict.assert_outcomes(errors=1)
    assert "the model has no class for: cat" in strict.stdout.str()


def test_an_npz_with_category_names_as_labels_scores_like_the_bundled_split(tmp_path, bundled):
    names = np.array([bundled.categories[label].upper() for label in bundled.labels])  # names, any case
    np.savez(tmp_path / "named.npz", images=bundled.images, labels=names)
    named = load_dataset(tmp_path / "named.npz")
    assert named.categories == sorted(c.upper() for c in bundled.categories)  # no list given: sorted names
    assert [named.categories[i].lower() for i in named.labels] == [bundled.categories[i] for i in bundled.labels]
    np.savez(tmp_path / "listed.npz", images=bundled.images, labels=names, categories=np.array(bundled.categories))
    listed = load_dataset(tmp_path / "listed.npz")
    assert listed.categories == bundled.categories and np.array_equal(listed.labels, bundled.labels)
    np.savez(tmp_path / "bad.npz", images=bundled.images[:2], labels=np.array(["cat", "unicorn"]),
             categories=np.array(bundled.categories))
    with pytest.raises(SketchBenchError, match="labels name categories not in the category list: unicorn"):
        load_dataset(tmp_path / "bad.npz")


def test_a_categories_file_in_another_order_is_diagnosed_not_scored_as_chance(centroid_project, bundled, tmp_path):
    """The categories file reversed: every model scores near chance, and the message says why."""
    (tmp_path / "reversed.json").write_text(json.dumps(bundled.categories[::-1]))
    centroid_project.makeconftest("from centroid_plugin import CentroidModel\nfrom pytest_sketchbench import "
                                  "register_model\nregister_model('centroid', weights='centroid.npz')(CentroidModel)\n")
    centroid_project.makefile(".toml", thresholds="[centroid]\nmin_accuracy = 0.5\n")
    centroid_project.copy_example(str(REPO / "benchmarks" / "test_accuracy.py"))
    result = centroid_project.runpytest("--sketch-models=centroid", *run_options(20),
                                        f"--sketch-categories={tmp_path / 'reversed.json'}",
                                        "-k", "test_accuracy and not top5")
    assert result.ret == 1
    result.stdout.re_match_lines([r".*centroid accuracy 0\.0\d+ .* ≈ chance \(1/23\): under another category order "
                                  r"its answers match 0\.\d+ of the labels \(22 categories moved: .* answered as .*\) "
                                  r"— the categories file lists them in another order than the model's classes"])


def test_a_data_path_or_categories_file_that_is_a_pipe_is_refused_not_read(tmp_path):
    """--sketch-data or --sketch-categories naming a FIFO would block the run forever on its first read."""
    import os

    fifo = tmp_path / "split.npz"
    os.mkfifo(fifo)
    with pytest.raises(SketchBenchError, match="split.npz: is not a regular file or folder"):
        load_dataset(fifo)
    with pytest.raises(SketchBenchError, match="split.npz: is not a regular file or folder"):
        load_dataset(BUNDLED, categories_path=fifo)
    with pytest.raises(SketchBenchError, match="missing.json: categories file not found"):  # not called a pipe
        load_dataset(BUNDLED, categories_path=tmp_path / "missing.json")


@given(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12),
                min_size=1, max_size=40))
def test_an_index_to_name_labels_file_reads_in_index_order(tmp_path_factory, names):
    """A published model's ``{"0": "bed", "1": "bread", …}`` (written from ``enumerate``) is its class order,
    whatever order the keys come in; keys that are not exactly 0…n-1 are refused, not guessed."""
    from pytest_sketchbench.data import read_category_file

    path = tmp_path_factory.mktemp("labels") / "labels.json"
    shuffled = dict(reversed(list(enumerate(names))))
    path.write_text(json.dumps({str(k): v for k, v in shuffled.items()}))
    assert read_category_file(path) == names
    path.write_text(json.dumps({str(k + 1): v for k, v in enumerate(names)}))  # 1-based: not an index map
    with pytest.raises(SketchBenchError, match="expected a JSON list of category names"):
        read_category_file(path)


@given(st.integers(2, 400))
def test_near_chance_means_closer_to_chance_than_to_perfect(n):
    """Chance-level accuracy always triggers the input probe; an accuracy nearer 1 than chance never does (with
    two categories "twice chance" is 1.0, which flagged a 0.997 model)."""
    from pytest_sketchbench.input_probe import near_chance

    assert near_chance(1 / n, n)
    assert not near_chance((1 + 1 / n) / 2, n)
    assert near_chance(1.9 / n, n) == (1.9 / n < (1 + 1 / n) / 2)
