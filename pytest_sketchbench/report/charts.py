"""PNG charts (matplotlib, headless) returned as bytes, so HTML can embed them as base64.

matplotlib is in the ``report`` extra: without it every function returns None and the
reports simply leave the pictures out.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from typing import Any

import numpy as np

from pytest_sketchbench.results import Accuracy, LatencyStats


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def png_bytes(figure: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def data_uri(png: bytes | None) -> str:
    return "" if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def confusion_png(accuracy: Accuracy, title: str) -> bytes | None:
    plt = pyplot()
    if plt is None:
        return None
    matrix = np.asarray(accuracy.confusion_matrix, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    labels = accuracy.labels
    size = 3 + 0.32 * len(labels)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title, fontsize=10)
    for i, j in zip(*np.nonzero(matrix), strict=True):
        if i == j or normalised[i, j] >= 0.05:
            axis.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=6,
                      color="white" if normalised[i, j] > 0.5 else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return png_bytes(figure, plt)


MISSING_NOTE = "charts left out: matplotlib is not installed (pip install 'pytest-sketchbench[report]')"


def available() -> bool:
    """Can charts be drawn? (The reports say so when they cannot, rather than leaving silent gaps.) Asked
    without importing pyplot, which costs 0.7 s: a JSON-only report never draws."""
    return importlib.util.find_spec("matplotlib") is not None


def category_colour(value: float, limit: float | None) -> str:
    """Red below the category's configured limit, blue at or above it, grey where none is configured."""
    if limit is None:
        return "#9e9e9e"
    return "#d9534f" if value < limit else "#4a90d9"


def category_accuracy_png(accuracy: Accuracy, title: str,
                          limits: dict[str, float | None] | None = None) -> bytes | None:
    plt = pyplot()
    if plt is None:
        return None
    limits = limits or {}
    rows = sorted(accuracy.per_category.items(), key=lambda kv: kv[1].accuracy)
    figure, axis = plt.subplots(figsize=(6, 0.25 * len(rows) + 1))
    values = [r.accuracy for _, r in rows]
    axis.barh([c for c, _ in rows], values, color=[category_colour(r.accuracy, limits.get(c)) for c, r in rows])
    axis.axvline(accuracy.accuracy, color="black", linestyle="--", linewidth=1, label="overall")
    axis.set_xlim(0, 1)
    axis.set_xlabel("accuracy")
    axis.set_title(title, fontsize=10)
    axis.legend(loc="lower right", fontsize=8)
    axis.tick_params(axis="y", labelsize=8)
    return png_bytes(figure, plt)


def scatter_png(points: list[tuple[str, float, float]]) -> bytes | None:
    """Accuracy vs p50 latency at batch 1, one point per model."""
    plt = pyplot()
    if plt is None or not points:
        return None
    return png_bytes(scatter_figure(points, plt), plt)


def scatter_figure(points: list[tuple[str, float, float]], plt: Any) -> Any:
    """The scatter's figure: labels kept inside the axes (room on every side, the label on the left of a point
    in the right third), and only the log axis' major ticks labelled (minor labels collide on a short range)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    figure, axis = plt.subplots(figsize=(6, 4))
    latencies = [latency for _, latency, _ in points]
    low, high = min(latencies), max(latencies)
    middle = (np.log10(low) + np.log10(high)) / 2 if high > low else None
    for name, latency, accuracy in points:
        axis.scatter(latency, accuracy, s=50)
        left = middle is not None and np.log10(latency) > middle
        axis.annotate(name, (latency, accuracy), textcoords="offset points", xytext=(-6 if left else 6, 5),
                      ha="right" if left else "left", fontsize=9)
    axis.set_xscale("log")
    axis.set_xlim(low / 1.6, high * 1.6)
    accuracies = [accuracy for _, _, accuracy in points]
    spread = max(max(accuracies) - min(accuracies), 0.02)
    axis.set_ylim(min(accuracies) - spread * 0.25, max(accuracies) + spread * 0.35)
    axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("p50 latency at batch 1 (ms, log scale)")
    axis.set_ylabel("top-1 accuracy")
    axis.set_title("accuracy vs latency", fontsize=10)
    axis.grid(alpha=0.3)
    return figure


def reliability_png(model: str, reliability: list[list[float]], binning: str) -> bytes | None:
    """The reliability diagram: accuracy against mean confidence per bin (the diagonal is perfect calibration),
    each point's area by its drawings."""
    plt = pyplot()
    if plt is None or not reliability:
        return None
    figure, axis = plt.subplots(figsize=(4.5, 4))
    confidence, accuracy, counts = (np.array(column, dtype=float) for column in zip(*reliability, strict=True))
    axis.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    axis.plot(confidence, accuracy, color="#3b5b8c", linewidth=1)
    axis.scatter(confidence, accuracy, s=20 + 180 * counts / counts.max(), color="#3b5b8c",
                 label="bins (area: drawings)")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("mean confidence in bin")
    axis.set_ylabel("accuracy in bin")
    axis.set_title(f"{model}: reliability ({binning})", fontsize=8)
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(alpha=0.3)
    return png_bytes(figure, plt)


def latency_png(model: str, timing: dict[int, LatencyStats]) -> bytes | None:
    """Distribution of raw latency samples per batch size (box plot)."""
    plt = pyplot()
    batches = sorted(((size, s) for size, s in timing.items() if s.samples_s), key=lambda pair: pair[0])
    if plt is None or not batches:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.boxplot([np.asarray(s.samples_s) * 1000 for _, s in batches], showfliers=False)
    axis.set_xticks(range(1, len(batches) + 1), [f"batch {b}" for b, _ in batches])
    axis.set_yscale("log")
    axis.set_ylabel("latency per call (ms)")
    axis.set_title(f"{model}: latency distribution", fontsize=10)
    axis.grid(alpha=0.3, axis="y")
    return png_bytes(figure, plt)


def drawing_png(image: np.ndarray, scale: int = 3) -> bytes:
    """One 28×28 drawing as a small greyscale PNG, black ink on white (written directly: no matplotlib)."""
    import struct
    import zlib

    pixels = 255 - np.kron(np.asarray(image, np.uint8).reshape(28, 28), np.ones((scale, scale), np.uint8))
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 per scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
