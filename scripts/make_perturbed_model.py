"""Write a perturbed copy of an ONNX model: every weight tensor (float or int8) gets seeded Gaussian noise,
a fraction of its own spread. A conversion gone slightly wrong, which the parity gates must catch.

    python scripts/make_perturbed_model.py models/cnn-int8.onnx /tmp/perturbed/cnn-int8.onnx [--noise 0.3]

Quantization scales and zero points are left alone (a broken scale is not a subtle error).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def perturbed(model: onnx.ModelProto, noise: float, seed: int = 0) -> tuple[onnx.ModelProto, int]:
    rng = np.random.default_rng(seed)
    changed = 0
    for tensor in model.graph.initializer:
        if "scale" in tensor.name or "zero_point" in tensor.name:
            continue
        values = numpy_helper.to_array(tensor)
        if values.size < 16 or values.dtype not in (np.float32, np.int8):
            continue  # shapes, axes and other small constants
        spread = float(np.std(values.astype(np.float64))) or 1.0
        noisy = values.astype(np.float64) + rng.normal(0.0, noise * spread, values.shape)
        if values.dtype == np.int8:
            noisy = np.clip(np.rint(noisy), -128, 127)
        tensor.CopyFrom(numpy_helper.from_array(noisy.astype(values.dtype), tensor.name))
        changed += 1
    return model, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--noise", type=float, default=0.3, help="noise, as a fraction of each tensor's spread")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, changed = perturbed(onnx.load(args.source), args.noise, args.seed)
    Path(args.target).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.target)
    print(f"wrote {args.target}: {changed} weight tensors perturbed by {args.noise:g}× their spread")


if __name__ == "__main__":
    main()
