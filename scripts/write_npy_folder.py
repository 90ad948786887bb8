"""Write a split as Google's numpy_bitmap layout — one ``<category>.npy`` of (N, 784) uint8 rows per category,
no categories.json — to check that ``--sketch-data DIR`` on such a folder scores like the split itself.

    python scripts/write_npy_folder.py /tmp/npy              # the bundled test split
    pytest benchmarks/ --sketch-models=onnx --sketch-data /tmp/npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pytest_sketchbench.data import load_dataset
from pytest_sketchbench.options import BUNDLED_TEST_SPLIT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", type=Path, default=BUNDLED_TEST_SPLIT)
    args = parser.parse_args()
    dataset = load_dataset(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    for label, category in enumerate(dataset.categories):
        np.save(args.out / f"{category}.npy", dataset.images[dataset.labels == label].reshape(-1, 784))
    print(f"{len(dataset.categories)} categories, {len(dataset)} drawings in {args.out}")


if __name__ == "__main__":
    main()
