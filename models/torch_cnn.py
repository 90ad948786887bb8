"""PyTorch modules for the TorchScript export of ``cnn`` (no ``from __future__ import annotations``:
TorchScript reads the class annotations at run time)."""

from typing import List  # noqa: UP035 — TorchScript's type system needs typing.List

import torch
from torch import nn


class Permute(nn.Module):
    def __init__(self, order: List[int]):  # noqa: UP006
        super().__init__()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.order)


class SketchNet(nn.Module):
    """Takes NHWC like the Keras model; ``input_shape`` tells the plugin what to feed."""

    input_shape: List[int]  # noqa: UP006

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body
        self.input_shape = [-1, 28, 28, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 3, 1, 2))
