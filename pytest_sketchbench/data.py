"""Loading, validating and subsampling Quick, Draw! datasets.

A dataset is always held as uint8 drawings of shape (N, 28, 28), 0 = background and
255 = ink (Google's numpy_bitmap convention); the model plugins turn that into their
own input formats through :mod:`pytest_sketchbench.preprocess`.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.files import is_stream

PROGRESS_EVERY_S = 5.0  # rendering progress is said at the first stroke file and then at most this often


@dataclass(frozen=True)
class Dataset:
    """Drawings, their labels and the category names (label i is ``categories[i]``)."""

    images: np.ndarray  # uint8 (N, 28, 28), ink = 255
    labels: np.ndarray  # int64 (N,)
    categories: list[str]
    exact: np.ndarray | None = None  # bool (N,): byte-identical to Google's files (False: approximate render)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def support(self) -> np.ndarray:
        """Drawings per category, in category order."""
        return np.bincount(self.labels, minlength=len(self.categories))

    @cached_property
    def _fingerprint(self) -> str:  # hashed once: every model's record and the baseline checks ask for it
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(self.labels.astype(np.int64).tobytes())
        digest.update(json.dumps(self.categories).encode())
        return digest.hexdigest()[:16]

    def fingerprint(self) -> str:
        """A short hash of images, labels and categories: two runs compare only on the same set."""
        return self._fingerprint

    def only(self, categories: list[str]) -> Dataset:
        """The drawings of ``categories`` alone, relabelled in that order (for a model that lacks the rest)."""
        keep = [self.categories.index(c) for c in categories]
        relabel = np.full(len(self.categories), -1, dtype=np.int64)
        relabel[keep] = np.arange(len(keep))
        rows = np.flatnonzero(relabel[self.labels] >= 0)
        return Dataset(self.images[rows], relabel[self.labels[rows]], list(categories),
                       None if self.exact is None else self.exact[rows], source=self.source,
                       meta={**self.meta, "categories_left_out": [c for c in self.categories if c not in categories]})


def load_dataset(path: str | Path, categories_path: str | Path | None = None, per_category: int = 0,
                 seed: int = 0, progress: Callable[[str], None] | None = None) -> Dataset:
    """Load a dataset — the bundled ``.npz``, or a folder of per-category ``.npy`` (numpy_bitmap) or
    ``.ndjson`` (simplified / raw strokes) files — keeping at most ``per_category`` drawings of each
    category (see :func:`subsample`; stroke files render only the drawings kept). Rendering strokes can take
    minutes: ``progress`` hears where it is, at the first file and then every few seconds."""
    path = Path(path)
    if not path.exists():
        raise SketchBenchError(
            str(path), "no such file or folder",
            "pass --sketch-data a .npz test split or a folder of <category>.npy or <category>.ndjson files",
        )
    for given in (path, Path(categories_path)) if categories_path else (path,):
        if is_stream(given):
            raise SketchBenchError(str(given), "is not a regular file or folder (a pipe, device or socket)",
                                   "point it at the data file or folder itself")
    categories = read_category_file(Path(categories_path)) if categories_path else None
    if path.is_dir():
        dataset = _load_folder(path, categories, per_category, seed, progress or (lambda text: None))
    elif path.suffix == ".npz":
        dataset = _load_npz(path, categories)
    else:
        raise SketchBenchError(str(path), f"unsupported data file type '{path.suffix}'",
                               "use a .npz split or a folder of numpy_bitmap .npy or ndjson files")
    validate_dataset(dataset)
    return subsample(dataset, per_category, seed)


def read_category_file(path: Path, text_lines: bool = False) -> list[str]:
    """A category list: JSON (a list, ``{"categories": [...]}``, or a published model's index → name map
    ``{"0": "bed", "1": "bread", …}``); with ``text_lines``, a file not named ``.json`` holds one name per
    line (a model's ``class_names.txt``)."""
    if text_lines and path.suffix.lower() != ".json" and path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.strip()]
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise SketchBenchError(str(path), "categories file not found", "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SketchBenchError(str(path), f"not valid JSON ({exc})", "write a JSON list of category names") from None
    if isinstance(value, dict):
        value = value.get("categories", _indexed_names(value))
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SketchBenchError(str(path), "expected a JSON list of category names",
                               'e.g. ["cat", "dog"] (label index = position)')
    return value


def _indexed_names(mapping: dict) -> list | None:
    """``{"0": "bed", "1": "bread"}`` as a list, when its keys are exactly the indices 0…n-1 (else None)."""
    if not mapping or not all(isinstance(key, str) and key.isascii() and key.isdigit() for key in mapping):
        return None
    order = sorted(mapping, key=int)
    return [mapping[key] for key in order] if [int(key) for key in order] == list(range(len(order))) else None


def _load_npz(path: Path, categories: list[str] | None) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SketchBenchError(str(path), f"cannot read the .npz archive ({exc.__class__.__name__}: {exc})",
                               "the file is corrupt or not an npz; rebuild it with data/build_dataset.py") from None
    for key in ("images", "labels"):
        if key not in arrays:
            raise SketchBenchError(str(path), f"missing array '{key}' (has: {', '.join(arrays) or 'none'})",
                                   "an npz dataset needs 'images' (N,28,28) uint8 and 'labels' (N,) ints")
    labels = arrays["labels"]
    named = labels.dtype.kind in "US"  # a category name per drawing instead of an index
    if categories is None:
        if "categories" in arrays:
            categories = [str(c) for c in arrays["categories"]]
        elif (path.parent / "categories.json").exists():
            categories = read_category_file(path.parent / "categories.json")
        elif named:
            categories = sorted({str(name) for name in labels})
        else:
            raise SketchBenchError(str(path), "no category names found",
                                   "add a 'categories' array, a categories.json beside it, or --sketch-categories")
    images = _as_drawings(arrays["images"], str(path))
    if named and labels.ndim == 1:
        labels = _indices_of_names(labels, list(categories), path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SketchBenchError(str(path), f"'labels' must be a 1-D integer array, got {labels.dtype} {labels.shape}",
                               "store label indices into the category list")
    exact = arrays.get("exact")
    if exact is not None and exact.shape != labels.shape:
        raise SketchBenchError(str(path), f"'exact' has shape {exact.shape}, labels {labels.shape}",
                               "store one flag per drawing or drop the array")
    return Dataset(images, labels.astype(np.int64), list(categories),
                   None if exact is None else exact.astype(bool), source=str(path))


def _indices_of_names(labels: np.ndarray, categories: list[str], path: Path) -> np.ndarray:
    """String labels → indices into ``categories``, matched by normalised name; unknown names are an error."""
    index = {normalised(c): i for i, c in enumerate(categories)}
    keys = [normalised(str(name)) for name in labels]
    unknown = sorted({str(name) for name, key in zip(labels, keys, strict=True) if key not in index})
    if unknown:
        raise SketchBenchError(str(path), f"labels name categories not in the category list: {', '.join(unknown[:5])}",
                               f"the list has {', '.join(categories[:5])}…; fix the labels or the 'categories' array")
    return np.array([index[key] for key in keys], dtype=np.int64)


# Google's download names: full_numpy_bitmap_cat.npy, full_simplified_cat.ndjson, full_raw_cat.ndjson
_DOWNLOAD_PREFIXES = ("full_numpy_bitmap_", "full_simplified_", "full_raw_", "full/simplified/", "full/raw/")


def _category_files(path: Path) -> dict[str, Path]:
    """``<category>.npy`` / ``<category>.ndjson`` files by category name (download prefixes dropped)."""
    files: dict[str, Path] = {}
    seen: dict[str, Path] = {}  # by the normalised name models are matched on: Cat.npy and cat.npy are one category
    for file in sorted([*path.glob("*.npy"), *path.glob("*.ndjson")]):
        stem = file.stem
        for prefix in _DOWNLOAD_PREFIXES:
            stem = stem.removeprefix(prefix)
        name = stem.replace("_", " ")
        if normalised(name) in seen:
            raise SketchBenchError(str(path), f"two files for category '{name}': {seen[normalised(name)].name} and "
                                   f"{file.name}", "keep one file per category (names are matched case-blind)")
        if not file.is_file():
            raise SketchBenchError(str(file), "is not a readable file (a folder, or a broken link)",
                                   "remove it, or put the category's file there")
        files[name] = seen[normalised(name)] = file
    return files


def _load_folder(path: Path, categories: list[str] | None, per_category: int, seed: int,
                 progress: Callable[[str], None]) -> Dataset:
    """One file per category: Google's numpy_bitmap ``.npy`` (N, 784) uint8, or its stroke ``.ndjson``."""
    files = _category_files(path)
    if categories is None:
        if (path / "categories.json").exists():
            categories = read_category_file(path / "categories.json")
        else:
            categories = sorted(files)
    if not categories:
        raise SketchBenchError(str(path), "no <category>.npy or <category>.ndjson files found",
                               "download numpy_bitmap or simplified files from Quick, Draw! into this folder")
    for name in categories:
        if name not in files:
            raise SketchBenchError(str(path / f"{name.replace(' ', '_')}.npy"), f"category '{name}' has no file",
                                   "add the file or remove the category from categories.json")
    strokes = {name: _StrokeFile(files[name]) for name in categories if files[name].suffix == ".ndjson"}
    bitmaps = {name: _read_npy(files[name]) for name in categories if name not in strokes}
    # the drawings subsample() would keep, decided before a stroke is drawn (rendering is the slow part)
    counts = [strokes[name].count if name in strokes else len(bitmaps[name]) for name in categories]
    picked = pick_per_category(counts, per_category, seed)
    images, labels = [], []
    to_render = sum(counts[k] if picked[k] is None else len(picked[k]) for k, name in enumerate(categories)
                    if name in strokes)
    rendered, last_said = 0, -np.inf
    for label, name in enumerate(categories):
        if name in strokes:
            if time.monotonic() - last_said >= PROGRESS_EVERY_S:
                progress(f"rendering strokes: {rendered:,} of {to_render:,} drawings done, "
                         f"now {strokes[name].path.name}")
                last_said = time.monotonic()
            drawings = strokes[name].render(picked[label])
            rendered += len(drawings)
        else:
            drawings = bitmaps[name] if picked[label] is None else bitmaps[name][picked[label]]
        if len(drawings) == 0:
            raise SketchBenchError(str(files[name]), f"category '{name}' has no drawings", "remove it or add drawings")
        images.append(drawings)
        labels.append(np.full(len(drawings), label, dtype=np.int64))
    meta = {"rendered_from_strokes": sorted(strokes)} if strokes else {}
    if any(pick is not None for pick in picked):
        meta.update(subsampled_per_category=per_category, seed=seed)
    return Dataset(np.concatenate(images), np.concatenate(labels), list(categories), source=str(path), meta=meta)


def _read_npy(file: Path) -> np.ndarray:
    try:
        rows = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise SketchBenchError(str(file), f"cannot read the .npy file ({exc})",
                               "the file is corrupt; download it again") from None
    return _as_drawings(rows, str(file))


class _StrokeFile:
    """A Google ``simplified`` or ``raw`` ndjson file: one drawing per line, rendered on demand."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with path.open("rb") as handle:
                self.count = sum(1 for line in handle if line.strip())
        except OSError as exc:
            raise SketchBenchError(str(path), f"cannot be read ({exc.__class__.__name__}: {exc.strerror or exc})",
                                   "replace it with Google's simplified or raw ndjson file") from None

    def render(self, rows: np.ndarray | None) -> np.ndarray:
        """The 28×28 bitmaps of the drawings at ``rows`` (line order among non-empty lines; None: all)."""
        from pytest_sketchbench.strokes import render_line

        wanted = None if rows is None else set(rows.tolist())
        out = []
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            index = 0
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if wanted is None or index in wanted:
                    try:
                        out.append(render_line(line)[1])
                    except (ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
                        raise SketchBenchError(f"{self.path}:{number}", f"not a Quick, Draw! drawing record "
                                               f"({exc.__class__.__name__}: {exc})",
                                               "each line must be a JSON object with a 'drawing' list of "
                                               "[xs, ys] strokes (Google's simplified or raw format)") from None
                index += 1
        return np.stack(out) if out else np.zeros((0, 28, 28), dtype=np.uint8)


def _as_drawings(array: np.ndarray, where: str) -> np.ndarray:
    """Accept (N, 784) or (N, 28, 28) uint8 and return (N, 28, 28)."""
    if array.dtype != np.uint8:
        raise SketchBenchError(where, f"drawings must be uint8 (0 = background, 255 = ink), got {array.dtype}",
                               "convert with (x * 255).astype(np.uint8) if they are floats in [0, 1]")
    if array.ndim == 2 and array.shape[1] == 784:
        return array.reshape(-1, 28, 28)
    if array.ndim == 3 and array.shape[1:] == (28, 28):
        return array
    raise SketchBenchError(where, f"drawings must have shape (N, 784) or (N, 28, 28), got {array.shape}",
                           "use Google's numpy_bitmap layout (28×28 per drawing)")


def validate_dataset(dataset: Dataset) -> None:
    """Check the things numpy would otherwise report as an obscure traceback much later."""
    where = dataset.source or "dataset"
    names = dataset.categories
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SketchBenchError(where, f"duplicate category names: {', '.join(duplicates)}",
                               "each category must appear once in the category list")
    if len(dataset.images) != len(dataset.labels):
        raise SketchBenchError(where, f"{len(dataset.images)} drawings but {len(dataset.labels)} labels",
                               "store one label per drawing")
    if len(dataset.labels) == 0:
        raise SketchBenchError(where, "the dataset is empty", "point --sketch-data at drawings")
    low, high = int(dataset.labels.min()), int(dataset.labels.max())
    if low < 0 or high >= len(names):
        raise SketchBenchError(where, f"labels range {low}..{high} but there are {len(names)} categories",
                               "labels must index the category list (0-based)")
    if float(np.mean(dataset.images[:1000] > 127)) > 0.5:
        raise SketchBenchError(where, "most pixels are ink: the drawings look inverted (white background)",
                               "store 0 = background and 255 = ink, e.g. images = 255 - images")
    empty = [names[i] for i, n in enumerate(dataset.support()) if n == 0]
    if empty:
        raise SketchBenchError(where, f"categories with no drawings: {', '.join(empty)}",
                               "remove them from the category list or add drawings")


def normalised(name: str) -> str:
    """A category name as both sides may spell it: case, ``_``, ``-`` and spaces do not matter."""
    return " ".join(name.replace("_", " ").replace("-", " ").casefold().split())


def category_columns(dataset: Dataset, model_name: str, model_categories: list[str] | None,
                     strict: bool = False) -> np.ndarray | None:
    """For each dataset category, the model's output column of the same name — matched by name, never by
    position; -1 where the model has no such class (those drawings are then left out of its accuracy,
    unless ``strict``). None where no remapping is needed (same list, or a model without one). A model that
    knows more categories than the dataset is read closed-set: the best of the dataset's categories."""
    if model_categories is None or list(model_categories) == list(dataset.categories):
        return None
    index = {normalised(name): column for column, name in enumerate(model_categories)}
    missing = [c for c in dataset.categories if normalised(c) not in index]
    if len(missing) == len(dataset.categories) or (missing and strict):
        raise SketchBenchError(f"model '{model_name}'", "category list does not match the dataset (the model has "
                               f"no class for: {', '.join(missing)})",
                               "give the model's class list (categories = \"class_names.txt\"), or a dataset of "
                               "its categories" + ("; strict_categories = true forbids leaving them out"
                                                   if strict else ""))
    return np.array([index.get(normalised(c), -1) for c in dataset.categories], dtype=np.int64)


def pick_per_category(counts: list[int], per_category: int, seed: int = 0) -> list[np.ndarray | None]:
    """For each category of ``counts`` drawings, the sorted positions of the ones to keep (None: all).

    Seeded and stratified; one random stream over the categories in order, so a folder of stroke
    files keeps the very drawings that :func:`subsample` keeps of the same drawings as bitmaps.
    """
    rng = np.random.default_rng(seed)
    picked: list[np.ndarray | None] = []
    for count in counts:
        if per_category > 0 and count > per_category:
            picked.append(np.sort(rng.choice(count, per_category, replace=False)))
        else:
            picked.append(None)
    return picked


def subsample(dataset: Dataset, per_category: int, seed: int = 0) -> Dataset:
    """Keep at most ``per_category`` drawings of each category (stratified, seeded, order kept)."""
    if per_category <= 0 or dataset.support().max() <= per_category:
        return dataset
    rows_of = [np.flatnonzero(dataset.labels == label) for label in range(len(dataset.categories))]
    picked = pick_per_category([len(rows) for rows in rows_of], per_category, seed)
    keep = [rows if pick is None else rows[pick] for rows, pick in zip(rows_of, picked, strict=True)]
    index = np.sort(np.concatenate(keep))
    return Dataset(
        dataset.images[index], dataset.labels[index], dataset.categories,
        None if dataset.exact is None else dataset.exact[index],
        source=dataset.source, meta={**dataset.meta, "subsampled_per_category": per_category, "seed": seed},
    )


def no_category_list(name: str, path: Path | None, dataset: Dataset) -> SketchBenchError:
    """A model that says nothing about its classes cannot be matched by name (a position is a guess): the error
    names where it looked, the dataset's list, and how to give the model one."""
    where = (f"{path} has none and no {path.name.split('.')[0]}.classes.json lies beside it" if path
             else "its plugin sets none in load()")
    return SketchBenchError(f"model '{name}'", f"no category list ({where}); the dataset {dataset.source} has "
                            f"{len(dataset.categories)}",
                            f'give the model\'s own, in its order: categories = "class_names.txt" (one name per '
                            f"line, or a .json list) in [models.{name}]")
