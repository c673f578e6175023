"""How much each pixel of a training crop counts in the loss: tolerance bands and hard negatives.

Two per-source choices change what a wrong pixel costs, both decided after augmentation, on the crop
the model actually sees:

- a **tolerance band** (``ignore=PX``): for datasets labelled with 1-px centrelines (UAV75), pixels
  within ``PX`` of a labelled crack pixel but not on it count 0, so a prediction as wide as the
  visible crack is not trained as wrong. It mirrors the precision side of the ``--tolerance``
  evaluation protocol, where a predicted pixel within the tolerance of a labelled one is a hit.
  Label dilation (``dilate=PX``) is the other answer to the same problem: it makes the band positive
  instead of leaving it out.
- **hard negatives** (``negatives=DIR``): regions that look like cracks but are not (UAV75's
  formwork planking joints) count :data:`HARD_NEGATIVE_WEIGHT` times as much as other background.

Torch-free; :class:`~crackseg.train.data.torch_dataset.AugmentedCrackDataset` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["HARD_NEGATIVE_WEIGHT", "PixelWeights", "grow"]

HARD_NEGATIVE_WEIGHT = 4.0
"""Loss weight of a hard-negative background pixel, against 1 for other background."""


def grow(mask: NDArray[np.bool_], radius_px: int) -> NDArray[np.bool_]:
    """``mask`` dilated by a disc of ``radius_px`` (the label dilation, and the band around labels)."""
    side = 2 * radius_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    return np.asarray(cv2.dilate(mask.astype(np.uint8), disc), dtype=bool)


@dataclass(frozen=True)
class PixelWeights:
    """Per-pixel loss weights of one training crop.

    Args:
        tolerance_px: width of the band around labelled cracks that counts 0 (0: no band).
        hard_negative_weight: weight of hard-negative pixels that are not cracks.
    """

    tolerance_px: int = 0
    hard_negative_weight: float = HARD_NEGATIVE_WEIGHT

    def __post_init__(self) -> None:
        if self.tolerance_px < 0 or self.hard_negative_weight <= 0:
            raise ValueError(
                f"tolerance_px must be >= 0 and hard_negative_weight > 0, not {self.tolerance_px} "
                f"and {self.hard_negative_weight}"
            )

    def __call__(
        self, cracks: NDArray[np.bool_], hard_negatives: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float32]:
        """Weights ``(H, W)`` float32 for crack labels ``(H, W)`` and optional hard-negative regions.

        The band wins over a hard negative: a pixel next to a crack is never trained as background.
        """
        weight = np.ones(cracks.shape, dtype=np.float32)
        if hard_negatives is not None:
            weight[hard_negatives & ~cracks] = self.hard_negative_weight
        if self.tolerance_px:
            weight[grow(cracks, self.tolerance_px) & ~cracks] = 0.0
        return weight
