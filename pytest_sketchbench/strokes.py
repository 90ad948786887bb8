"""Google's stroke formats (``simplified`` and ``raw`` ndjson) rendered the way numpy_bitmap was.

Quick, Draw!'s 28×28 bitmaps were rendered from the *simplified* drawings (coordinates 0–255) with
cairo: the drawing centred by its largest coordinates on a 256-pixel canvas, 16 px padding on each
side, a 16 px round-capped, round-joined line, scaled down to 28×28 with anti-aliasing, white ink
composited stroke by stroke over black (the renderer Google's team published in quickdraw-dataset
issue #19). This module does the same in numpy — each pixel's ink is the share of a 16×16 sample
grid within half a line width of the stroke — so no cairo is needed. ``raw`` drawings are first
simplified as Google documents it (align to 0, scale to 255, resample at 1 px, Ramer–Douglas–Peucker
with ε = 2). How close the renders come to Google's own bitmaps is measured by
``scripts/check_renderer.py`` against byte-exact rows of the same drawings (see data/README.md).
"""

from __future__ import annotations

import json

import numpy as np

SIDE = 28
CANVAS = 256.0
LINE_DIAMETER = 16.0
PADDING = 16.0
SUPERSAMPLE = 16  # 16×16 samples per output pixel: within 0.3 grey levels of exact coverage

Stroke = np.ndarray  # float (K, 2): x, y on the 0–255 canvas
# bounds a drawing must keep before anything is drawn (rendering costs ~4 ms a point: 20,000 points took 84 s).
# Google's simplified drawings have tens to a few hundred points; raw ones a few thousand before simplifying.
MAX_POINTS_PER_STROKE = 20_000
MAX_RAW_POINTS = 50_000        # a whole raw drawing, before Google's simplification
MAX_RENDERED_POINTS = 2_000    # what is drawn: a simplified drawing, or a raw one after simplifying
MAX_COORDINATE = 1e6           # |x|, |y|: raw canvases are device pixels


def parse_line(line: str) -> tuple[str, list[list[list[float]]]]:
    """One ndjson record → (its ``word``, its ``drawing``: strokes of [xs, ys] or [xs, ys, ts])."""
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("drawing"), list):
        raise ValueError("a record needs a 'drawing' list of strokes")
    return str(record.get("word", "")), record["drawing"]


def strokes_of(drawing: list) -> tuple[list[Stroke], bool]:
    """The strokes as (K, 2) float arrays, and whether they are raw (timed, or off the 0–255 canvas)."""
    strokes, raw = [], False
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) < 2 or len(stroke[0]) != len(stroke[1]):
            raise ValueError("each stroke must be [xs, ys] (or [xs, ys, ts]) of equal lengths")
        raw = raw or len(stroke) > 2
        if len(stroke[0]) > MAX_POINTS_PER_STROKE:
            raise ValueError(f"a stroke of {len(stroke[0]):,} points (at most {MAX_POINTS_PER_STROKE:,})")
        points = np.column_stack([np.asarray(stroke[0], dtype=float), np.asarray(stroke[1], dtype=float)])
        if points.size and not (np.isfinite(points).all() and np.abs(points).max() <= MAX_COORDINATE):
            raise ValueError(f"coordinates must be finite numbers within ±{MAX_COORDINATE:g}")
        if len(points):
            strokes.append(points)
    if strokes:
        every = np.concatenate(strokes)
        raw = raw or bool(every.min() < 0 or every.max() > CANVAS - 1)
    return strokes, raw


def simplify_raw(strokes: list[Stroke], epsilon: float = 2.0) -> list[Stroke]:
    """Google's simplification of a raw drawing: align to 0, scale uniformly to 255, resample at 1 px, RDP."""
    every = np.concatenate(strokes)
    low = every.min(axis=0)
    extent = float((every - low).max()) or 1.0
    scaled = [(stroke - low) * (CANVAS - 1) / extent for stroke in strokes]
    return [np.round(_rdp(_resample(stroke), epsilon)) for stroke in scaled]


def _resample(points: Stroke, spacing: float = 1.0) -> Stroke:
    """Points every ``spacing`` pixels along the stroke (its ends kept)."""
    if len(points) < 2:
        return points
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    if arc[-1] == 0:
        return points[:1]
    at = np.append(np.arange(0.0, arc[-1], spacing), arc[-1])
    return np.column_stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])])


def _rdp(points: Stroke, epsilon: float) -> Stroke:
    """Ramer–Douglas–Peucker: keep the points farther than ``epsilon`` from the chord (iterative)."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    pending = [(0, len(points) - 1)]
    while pending:
        first, last = pending.pop()
        if last - first < 2:
            continue
        distances = _distance_to_segment(points[first + 1:last], points[first], points[last])
        farthest = int(np.argmax(distances))
        if distances[farthest] > epsilon:
            middle = first + 1 + farthest
            keep[middle] = True
            pending += [(first, middle), (middle, last)]
    return points[keep]


def _distance_to_segment(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point to the segment start–end (a point where they coincide)."""
    direction = end - start
    length2 = float(direction @ direction)
    t = np.zeros(len(points)) if length2 == 0 else np.clip((points - start) @ direction / length2, 0.0, 1.0)
    return np.hypot(*(points - start - t[:, None] * direction).T)


def render(strokes: list[Stroke], side: int = SIDE) -> np.ndarray:
    """Strokes on the 0–255 canvas → a (side, side) uint8 bitmap, 0 = background, 255 = ink."""
    total_padding = 2 * PADDING + LINE_DIAMETER
    scale = side / (CANVAS + total_padding)
    radius = LINE_DIAMETER * scale / 2
    centring = (CANVAS - np.concatenate(strokes).max(axis=0)) / 2 if strokes else 0.0  # as Google's renderer
    grid = (np.arange(side * SUPERSAMPLE) + 0.5) / SUPERSAMPLE  # sample centres, in output pixels
    remaining = np.ones((side, side))  # share of each pixel not yet inked: strokes composite OVER
    for stroke in strokes:
        if len(stroke) < 2:  # cairo draws nothing for a lone move_to
            continue
        points = (stroke + centring + total_padding / 2) * scale
        inked = np.zeros((side * SUPERSAMPLE,) * 2, dtype=bool)  # one stroke is one path: a union
        for start, end in zip(points[:-1], points[1:], strict=True):
            low = np.clip(np.floor((np.minimum(start, end) - radius) * SUPERSAMPLE).astype(int), 0, None)
            high = np.ceil((np.maximum(start, end) + radius) * SUPERSAMPLE).astype(int)
            xs, ys = grid[low[0]:high[0]], grid[low[1]:high[1]]
            if not len(xs) or not len(ys):
                continue
            sample = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
            near = (_distance_to_segment(sample, start, end) <= radius).reshape(len(ys), len(xs))
            inked[low[1]:low[1] + len(ys), low[0]:low[0] + len(xs)] |= near
        remaining *= 1.0 - inked.reshape(side, SUPERSAMPLE, side, SUPERSAMPLE).mean(axis=(1, 3))
    return np.round((1.0 - remaining) * 255).astype(np.uint8)


def render_line(line: str) -> tuple[str, np.ndarray]:
    """One ndjson record (simplified or raw) → (its word, its 28×28 uint8 bitmap)."""
    word, drawing = parse_line(line)
    strokes, raw = strokes_of(drawing)
    if not strokes:
        return word, np.zeros((SIDE, SIDE), dtype=np.uint8)
    if raw and sum(map(len, strokes)) > MAX_RAW_POINTS:
        raise ValueError(f"a raw drawing of {sum(map(len, strokes)):,} points (at most {MAX_RAW_POINTS:,})")
    drawn = simplify_raw(strokes) if raw else strokes
    if sum(map(len, drawn)) > MAX_RENDERED_POINTS:
        raise ValueError(f"{sum(map(len, drawn)):,} points to draw (at most {MAX_RENDERED_POINTS:,})")
    return word, render(drawn)
