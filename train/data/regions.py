"""Hard-negative regions as a second label plane: parts of the image that look like cracks but are not.

UAV75 ships ``planking/<split>/<stem>.png`` beside its crack masks: the formwork joints that a crack
model mistakes for cracks. :class:`WithRegions` stacks such a region mask under the crack mask, so
that the geometric augmentation moves both alike and :class:`~crackseg.train.data.pixel_weights.PixelWeights`
can weight the region's pixels as hard negatives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.evaluation.dataset import CrackDataset, DatasetError, read_mask

__all__ = ["WithRegions"]


class WithRegions:
    """A crack dataset whose samples come as ``(image, planes)``: planes ``(H, W, 2)``, cracks then regions.

    Args:
        dataset: the crack samples.
        regions_dir: folder laid out like the masks folder (``<stem>.png``, binary like a crack
            mask); an image without a region file has an empty region.
    """

    def __init__(self, dataset: CrackDataset, regions_dir: Path) -> None:
        if not regions_dir.is_dir():
            raise DatasetError(f"hard-negative folder not found: {regions_dir}")
        self.dataset = dataset
        self.regions_dir = regions_dir

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        image, cracks = self.dataset.load(index)
        path = self.regions_dir / f"{self.dataset.stems[index]}.png"
        if not path.is_file():
            return image, np.dstack([cracks, np.zeros_like(cracks)])
        region = read_mask(path)
        if region.shape != cracks.shape:
            raise DatasetError(
                f"size mismatch: region {path} is {region.shape[1]}x{region.shape[0]} "
                f"but its mask is {cracks.shape[1]}x{cracks.shape[0]}"
            )
        return image, np.dstack([cracks, region])
