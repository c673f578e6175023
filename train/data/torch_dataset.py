"""PyTorch view of crack datasets: augmented, normalized crops for training, mixed from several sources.

The only module of ``crackseg.train.data`` that imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from crackseg.edge.backends.preprocess import normalize
from crackseg.train.data.augment import Augment
from crackseg.train.data.pixel_weights import PixelWeights

__all__ = ["AugmentedCrackDataset", "SourceMix", "TrainingSample", "WeightedSourceSampler"]

TrainingSample = tuple[Tensor, Tensor, Tensor]
"""``(image, mask, pixel_weight)``: float32 ``(3, h, w)`` normalized, ``(1, h, w)`` in {0, 1}, ``(1, h, w)``."""


class Samples(Protocol):
    """What the training view reads: a :class:`~crackseg.edge.evaluation.dataset.CrackDataset`, or one
    with label planes (:class:`~crackseg.train.data.regions.WithRegions`)."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]: ...


class AugmentedCrackDataset(Dataset[TrainingSample]):
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
        stream: non-negative number that keeps the draws of datasets mixed in one run apart
            (their source's position in the mix); 0 for a dataset trained alone.
        pixel_weights: how much each pixel of the augmented crop counts in the loss (default: all 1).
    """

    def __init__(
        self,
        dataset: Samples,
        augment: Augment,
        seed: int,
        mean: Sequence[float],
        std: Sequence[float],
        stream: int = 0,
        pixel_weights: PixelWeights | None = None,
    ) -> None:
        if seed < 0 or stream < 0:
            raise ValueError(f"seed and stream must be non-negative, not {seed} and {stream}")
        self.stream = stream
        self.dataset = dataset
        self.augment = augment
        self.seed = seed
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.pixel_weights = pixel_weights or PixelWeights()
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

    def __getitem__(self, index: int) -> TrainingSample:
        """One augmented sample (see :data:`TrainingSample`)."""
        key = [self.seed, self.epoch, index] + ([self.stream] if self.stream else [])
        rng = np.random.default_rng(key)
        image, labels = self.augment(*self.dataset.load(index), rng)
        cracks, regions = (labels, None) if labels.ndim == 2 else (labels[..., 0], labels[..., 1])
        return (
            torch.from_numpy(normalize(image, self.mean, self.std)),
            torch.from_numpy(cracks[None].astype(np.float32)),
            torch.from_numpy(self.pixel_weights(cracks, regions)[None]),
        )


class SourceMix(Dataset[TrainingSample]):
    """Several augmented datasets behind one index (``0 .. len(first) - 1`` is the first), with sampling weights.

    Args:
        sources: the datasets, in mix order.
        weights: each source's relative share of an epoch (default: equal shares); see
            :class:`WeightedSourceSampler`.
    """

    def __init__(self, sources: Sequence[AugmentedCrackDataset], weights: Sequence[float] | None = None) -> None:
        if not sources:
            raise ValueError("a source mix needs at least one dataset")
        self.sources = list(sources)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.sources)
        self.offsets = np.cumsum([0] + [len(source) for source in self.sources])

    @property
    def sizes(self) -> list[int]:
        return [len(source) for source in self.sources]

    def set_epoch(self, epoch: int) -> None:
        for source in self.sources:
            source.set_epoch(epoch)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> TrainingSample:
        source = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.sources[source][index - int(self.offsets[source])]


class WeightedSourceSampler(Sampler[int]):
    """Draws each epoch's indices of a :class:`SourceMix` so that each source gets its weight's share.

    How many samples each source gives is drawn from a multinomial over the normalized weights (a
    source of weight 0 gives none: it is there to be validated on); within
    a source, samples come from its own shuffled order, repeated when its share exceeds its size, so
    no image repeats before every image of its source has been seen. With one source and the default
    length this is a plain random permutation. The draws depend only on (seed, epoch); under
    distributed training every rank draws the same list and takes every ``world_size``-th item.

    Args:
        sizes: number of samples in each source, in mix order.
        weights: positive relative weight of each source.
        samples_per_rank: indices per rank and epoch (default: the mix's size split over ranks).
        seed: base seed.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        seed: int,
        samples_per_rank: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError(f"need one weight per source, got {len(weights)} weights for {len(sizes)} sources")
        if min(weights) < 0 or max(weights) <= 0 or min(sizes) <= 0:
            raise ValueError(
                f"source weights must be non-negative, one positive, and sizes positive; got {list(weights)} "
                f"and {list(sizes)}"
            )
        self.sizes = list(sizes)
        self.shares = np.asarray(weights, dtype=np.float64) / float(sum(weights))
        self.offsets = np.cumsum([0, *self.sizes])
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.samples_per_rank = samples_per_rank or sum(self.sizes) // world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_rank

    def epoch_indices(self) -> np.ndarray:
        """All ranks' indices of the current epoch, before sharding."""
        rng = np.random.default_rng([self.seed, self.epoch])
        total = self.samples_per_rank * self.world_size
        counts = rng.multinomial(total, self.shares) if len(self.sizes) > 1 else np.array([total])
        picked: list[np.ndarray] = []
        for source, count in enumerate(counts):
            size = self.sizes[source]
            rounds = max(1, -(-int(count) // size))
            order = np.concatenate([rng.permutation(size) for _ in range(rounds)])[:count]
            picked.append(order.astype(np.int64) + self.offsets[source])
        indices = np.concatenate(picked)
        return indices if len(self.sizes) == 1 else rng.permutation(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices()[self.rank :: self.world_size].tolist())
