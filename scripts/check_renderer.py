"""How close our stroke renderer comes to Google's own numpy_bitmap rows of the same drawings.

    python scripts/check_renderer.py                       # tests/data/ndjson against ../shared/quickdraw-v2
    python scripts/check_renderer.py DIR --against SHARED  # any folder of <category>.ndjson
    python scripts/check_renderer.py --write-bitmaps tests/data/numpy_bitmap   # refresh the test fixture

Each drawing is rendered (``pytest_sketchbench.strokes``) and matched with the row of the same
category in ``--against`` nearest to it (mean absolute difference); a match closer than 2 grey levels
is the same drawing (unrelated drawings of a category differ by 14 or more). It prints, per category
and overall, how many drawings were found and the mean / max absolute pixel error of their renders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_sketchbench.strokes import render_line  # noqa: E402

MATCH_BELOW = 2.0  # grey levels of mean absolute difference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=str(REPO / "tests" / "data" / "ndjson"))
    parser.add_argument("--against", default=str(REPO.parent / "shared" / "quickdraw-v2"))
    parser.add_argument("--write-bitmaps", metavar="DIR", help="save the matched Google rows as <category>.npy")
    args = parser.parse_args(argv)

    errors, worst, found, total = [], 0, 0, 0
    for file in sorted(Path(args.folder).glob("*.ndjson")):
        rows = np.load(Path(args.against) / f"{file.stem}.npy").astype(np.int16)
        lines = [line for line in file.read_text().splitlines() if line.strip()]
        matched, category_errors = [], []
        for line in lines:
            render = render_line(line)[1].reshape(-1).astype(np.int16)
            distance = np.abs(rows - render).mean(axis=1)
            nearest = int(np.argmin(distance))
            if distance[nearest] < MATCH_BELOW:
                matched.append(nearest)
                category_errors.append(float(distance[nearest]))
                worst = max(worst, int(np.abs(rows[nearest] - render).max()))
        found, total = found + len(matched), total + len(lines)
        errors += category_errors
        print(f"{file.stem:<12} {len(matched)}/{len(lines)} found (rows {matched}), mean |error| "
              f"{np.mean(category_errors) if category_errors else float('nan'):.3f} grey levels")
        if args.write_bitmaps:
            Path(args.write_bitmaps).mkdir(parents=True, exist_ok=True)
            np.save(Path(args.write_bitmaps) / f"{file.stem}.npy", rows[matched].astype(np.uint8))
    if not errors:
        print("no drawing was found among the rows: not the same drawings, or the renderer is off")
        return 1
    print(f"overall: {found}/{total} drawings found; mean absolute pixel error {np.mean(errors):.3f} "
          f"(median per drawing {np.median(errors):.3f}, worst drawing {max(errors):.3f}) on a 0-255 scale; "
          f"largest single-pixel difference {worst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
