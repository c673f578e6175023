"""PyTorch view of a :class:`CrackDataset`: augmented, normalized crops for training.

The only module of ``crackseg.train.data`` that imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.edge.preprocess import normalize
from crackseg.train.data.augment import Augment

__all__ = ["AugmentedCrackDataset"]


class AugmentedCrackDataset(Dataset[tuple[Tensor, Tensor]]):
    """Augmented, normalized training samples whose randomness depends only on (seed, epoch, index).

    Each item draws from ``np.random.default_rng([seed, epoch, index])``, so a run is reproducible
    whatever the number of DataLoader workers or the order they fetch in. Call :meth:`set_epoch`
    before iterating each epoch to get new augmentations. The epoch lives in shared memory, so
    workers that outlive an epoch (``persistent_workers=True``) see the new value too.

    Args:
        dataset: the samples.
        augment: e.g. :class:`~crackseg.train.data.augment.TrainAugment`.
        seed: non-negative base seed.
        mean: per-channel mean of the model spec.
        std: per-channel std of the model spec.
    """

    def __init__(
        self, dataset: CrackDataset, augment: Augment, seed: int, mean: Sequence[float], std: Sequence[float]
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, not {seed}")
        self.dataset = dataset
        self.augment = augment
        self.seed = seed
        self.mean = tuple(mean)
        self.std = tuple(std)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentations of ``epoch``; call it before the DataLoader iterator for that epoch starts."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, not {epoch}")
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        """Return ``(image, mask)``: float32 ``(3, h, w)`` normalized and float32 ``(1, h, w)`` in {0, 1}."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image, mask = self.augment(*self.dataset.load(index), rng)
        return torch.from_numpy(normalize(image, self.mean, self.std)), torch.from_numpy(mask[None].astype(np.float32))
