"""What every crackseg architecture offers the training loop, the exporter and the spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

from crackseg.train.models.pretrained import PretrainedWeights

__all__ = ["CrackModel", "ModelOutput"]


class ModelOutput(NamedTuple):
    """Training-mode output: fused logits and side logits (finest first), all ``(N, 1, H, W)``."""

    fused: Tensor
    sides: list[Tensor]


class CrackModel(nn.Module):
    """Base of every registered architecture.

    Input: RGB normalized per the spec, ``(N, 3, H, W)``, H and W multiples of :attr:`size_multiple`.
    Training mode returns :class:`ModelOutput` (fused and side logits); eval mode returns the crack
    probability ``(N, 1, H, W)``. Subclasses implement :meth:`forward_logits` only.
    """

    input_channels = 3
    paper_loss = "scnet"
    """Name of the objective its paper trains with (see ``crackseg.train.losses.create_loss``)."""
    pretrained_weights: PretrainedWeights | None = None
    """The ImageNet weights its encoder can start from (``train --pretrained``), if any."""

    def load_pretrained(self, state: Mapping[str, Tensor]) -> None:
        """Loads :attr:`pretrained_weights`' state dict into the encoder; variants with such weights override it."""
        raise NotImplementedError(f"{type(self).__name__} has no pretrained encoder")

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (the network's total stride)."""
        raise NotImplementedError

    @property
    def side_weights(self) -> tuple[float, ...]:
        """Loss weight of each side output, finest first (empty for single-output networks)."""
        raise NotImplementedError

    def forward(self, image: Tensor) -> ModelOutput | Tensor:
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            self.check_input(image)
        output = self.forward_logits(image)
        if self.training:
            return output
        return torch.sigmoid(output.fused)

    def forward_logits(self, image: Tensor) -> ModelOutput:
        """The network proper: fused and side logits for a checked input."""
        raise NotImplementedError

    def check_input(self, image: Tensor) -> None:
        """Raises ``ValueError`` naming the expected shape when ``image`` cannot be segmented."""
        multiple = self.size_multiple
        shape = tuple(image.shape)
        if image.ndim != 4 or shape[1] != self.input_channels or shape[2] % multiple or shape[3] % multiple:
            raise ValueError(
                f"expected an RGB batch of shape (N, {self.input_channels}, H, W) with H and W multiples of "
                f"{multiple}, got {shape}"
            )
