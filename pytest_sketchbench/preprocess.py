"""Turn uint8 drawings (N, 28, 28), ink = 255, into the input formats models need.

Every function takes a whole batch and is vectorised: preprocessing must never be
what a latency or throughput figure measures.
"""

from __future__ import annotations

import base64
import io

import numpy as np

FORMATS = ("grayscale", "rgb", "png")
INKS = ("white-on-black", "black-on-white")  # Google's bitmaps are white ink on black; a canvas is the other way
VALUE_RANGES = {"0-1": (1.0, 0.0), "0-255": (255.0, 0.0), "-1-1": (2.0, -1.0)}  # scale, offset from [0, 1]
NATURAL_INK = {"grayscale": "white-on-black", "rgb": "black-on-white"}


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28, 1) float32, ink = 1.0, background = 0.0 — the ``cnn`` input."""
    return (images.astype(np.float32) * (1.0 / 255.0))[..., None]


def _resize_matrix(src: int, dst: int) -> np.ndarray:
    """A (dst, src) bilinear interpolation matrix (align_corners=False, like tf.image.resize)."""
    scale = src / dst
    centres = (np.arange(dst) + 0.5) * scale - 0.5
    centres = np.clip(centres, 0, src - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, src - 1)
    frac = centres - low
    matrix = np.zeros((dst, src), dtype=np.float32)
    matrix[np.arange(dst), low] += 1 - frac
    matrix[np.arange(dst), high] += frac
    return matrix


def to_rgb(images: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """(N, H, W, 3) float32 in [0, 1], black ink on white — what a browser canvas gives.

    Bilinear resizing is two matrix products over the whole batch, so any size taken
    from the model costs the same code path.
    """
    width = width or height
    gray = images.astype(np.float32) * (1.0 / 255.0)
    rows, cols = _resize_matrix(gray.shape[1], height), _resize_matrix(gray.shape[2], width)
    resized = np.einsum("hi,nij,wj->nhw", rows, gray, cols, optimize=True)
    canvas = 1.0 - np.clip(resized, 0.0, 1.0)
    return np.repeat(canvas[..., None], 3, axis=-1)


def to_png_base64(images: np.ndarray, scale: int = 4) -> list[str]:
    """Base64 PNGs (black ink on white, upscaled) — the input of API models."""
    from PIL import Image  # pillow ships with matplotlib and google-genai

    encoded = []
    for drawing in images:
        canvas = Image.fromarray(255 - drawing, mode="L")
        if scale > 1:
            canvas = canvas.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG", optimize=False)
        encoded.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return encoded


def apply_contract(batch: np.ndarray, input_format: str, ink: str | None = None,
                   value_range: str | None = None) -> np.ndarray:
    """A [0, 1] batch in the format's natural polarity turned into what a model says it expects: the other
    ink polarity (``1 - x``) and/or another value range (``0-255``, ``-1-1``)."""
    if ink and ink != NATURAL_INK.get(input_format, ink):
        batch = 1.0 - batch
    scale, offset = VALUE_RANGES[value_range or "0-1"]
    if (scale, offset) != (1.0, 0.0):
        batch = batch * np.float32(scale) + np.float32(offset)
    return batch
