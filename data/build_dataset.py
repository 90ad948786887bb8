"""Build the bundled Quick, Draw! split from ``../shared/quickdraw-v2``.

Deterministic: the same source files give the same ``quickdraw_test.npz`` (byte-identical on one Python build).
Each category is split on its own (stratified) with a seeded permutation into
train / validation / test; every row is hashed and the script refuses to write
anything if a drawing would appear in two splits or two categories.

    python data/build_dataset.py                 # rebuild data/ from ../shared/quickdraw-v2
    python data/build_dataset.py --check         # rebuild in memory, compare with committed file

The model recipes import :func:`build_splits` to get the train/validation rows,
so training data never needs to be committed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "pytest_sketchbench" / "bundled"  # the test split ships inside the wheel
DEFAULT_SOURCE = HERE.parent.parent / "shared" / "quickdraw-v2"
SEED = 20261122
TEST_FRACTION, TEST_CAP = 0.20, 300
VALIDATION_FRACTION, VALIDATION_CAP = 0.10, 300

# The 28 categories of the seed, in the seed's order. Categories without real
# drawings are skipped (never faked) and listed in the data card.
SEED_CATEGORIES = [
    "cat", "dog", "elephant", "giraffe", "lion", "tiger", "bear", "bird", "fish",
    "apple", "banana", "grapes", "strawberry", "pizza", "hamburger", "hot dog",
    "ice cream", "cake", "airplane", "train", "bicycle", "helicopter", "car",
    "house", "tree", "flower", "sun", "moon",
]


def split_sizes(n_rows: int) -> tuple[int, int, int]:
    """(train, validation, test) row counts for a category of ``n_rows`` drawings."""
    n_test = min(TEST_CAP, round(TEST_FRACTION * n_rows))
    n_val = min(VALIDATION_CAP, round(VALIDATION_FRACTION * n_rows))
    return n_rows - n_val - n_test, n_val, n_test


def exact_mask(meta: dict) -> np.ndarray:
    """Per-row flag: True where the row is byte-identical to Google's numpy_bitmap."""
    mask = np.zeros(meta["rows"], dtype=bool)
    for source in meta["sources"]:
        start, stop = source["rows"]
        mask[start:stop] = source["rendering"].startswith("exact")
    return mask


def build_splits(source_dir: Path = DEFAULT_SOURCE) -> dict:
    """Read the shared drawings and return categories, splits and provenance."""
    source_dir = Path(source_dir)
    sources = json.loads((source_dir / "sources.json").read_text())["categories"]
    categories = [c for c in SEED_CATEGORIES if sources.get(c, {}).get("rows", 0) > 0]
    missing = [c for c in SEED_CATEGORIES if c not in categories]
    splits = {name: {"images": [], "labels": [], "exact": []} for name in ("train", "validation", "test")}
    counts = {}
    for label, category in enumerate(categories):
        meta = sources[category]
        rows = np.load(source_dir / meta["file"])
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 784 or len(rows) != meta["rows"]:
            raise SystemExit(f"{meta['file']}: expected uint8 ({meta['rows']}, 784), got {rows.dtype} {rows.shape}")
        exact = exact_mask(meta)
        # One generator per category keyed by its label: adding a category never reshuffles another.
        order = np.random.default_rng([SEED, label]).permutation(len(rows))
        n_train, n_val, n_test = split_sizes(len(rows))
        parts = {"test": order[:n_test], "validation": order[n_test:n_test + n_val],
                 "train": order[n_test + n_val:]}
        for name, index in parts.items():
            index = np.sort(index)  # keep the source order inside a split: readable, still deterministic
            splits[name]["images"].append(rows[index])
            splits[name]["labels"].append(np.full(len(index), label, dtype=np.uint8))
            splits[name]["exact"].append(exact[index])
        counts[category] = {"train": n_train, "validation": n_val, "test": n_test,
                            "exact_rows": int(exact.sum()), "rows": len(rows)}
    merged = {name: {key: np.concatenate(parts) for key, parts in split.items()} for name, split in splits.items()}
    check_disjoint(merged, categories)
    return {"categories": categories, "missing": missing, "splits": merged, "counts": counts}


def check_disjoint(splits: dict, categories: list[str]) -> None:
    """Refuse any drawing that appears twice (in two splits, or two categories)."""
    seen: dict[bytes, tuple[str, int]] = {}
    for name, split in splits.items():
        for row, label in zip(split["images"], split["labels"], strict=True):
            digest = hashlib.sha1(row.tobytes()).digest()
            if digest in seen:
                other = seen[digest]
                raise SystemExit(
                    f"duplicate drawing: {name}/{categories[label]} equals {other[0]}/{categories[other[1]]}"
                )
            seen[digest] = (name, int(label))


def test_npz_bytes(built: dict) -> bytes:
    """The committed test split, serialised deterministically (zip entries carry a fixed date)."""
    test = built["splits"]["test"]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        images=test["images"].reshape(-1, 28, 28),
        labels=test["labels"],
        exact=test["exact"],
        categories=np.array(built["categories"]),
    )
    return buffer.getvalue()


def same_content(path: Path, data: bytes) -> bool:
    """The JSON files byte for byte; the .npz array by array (name, dtype, values): its zip headers carry the
    writing Python's zip version (20 on Debian's 3.11.2, 45 elsewhere), which is not the data."""
    if path.suffix != ".npz":
        return path.read_bytes() == data
    with np.load(path, allow_pickle=False) as committed, np.load(io.BytesIO(data), allow_pickle=False) as rebuilt:
        return sorted(committed.files) == sorted(rebuilt.files) and all(
            committed[name].dtype == rebuilt[name].dtype and np.array_equal(committed[name], rebuilt[name])
            for name in committed.files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of <category>.npy files")
    parser.add_argument("--out", type=Path, default=BUNDLED, help="where to write the bundled test split")
    parser.add_argument("--check", action="store_true", help="only verify the committed files are reproduced")
    args = parser.parse_args(argv)

    built = build_splits(args.source)
    payload = test_npz_bytes(built)
    categories_json = json.dumps(built["categories"], indent=1) + "\n"
    counts_json = json.dumps({"seed": SEED, "missing": built["missing"], "counts": built["counts"]}, indent=1) + "\n"
    outputs = {args.out / "quickdraw_test.npz": payload, args.out / "categories.json": categories_json.encode(),
               HERE / "split_counts.json": counts_json.encode()}
    if args.check:
        stale = [path.name for path, data in outputs.items() if not same_content(path, data)]
        if stale:
            print(f"differs from the rebuild: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"OK: {', '.join(path.name for path in outputs)} reproduced (the .npz array by array)")
        return 0
    for path, data in outputs.items():
        path.write_bytes(data)
    n_test = len(built["splits"]["test"]["labels"])
    print(f"wrote {len(built['categories'])} categories, {n_test} test drawings to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
