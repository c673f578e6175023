"""Training data: crack datasets on disk, committed splits and augmentation.

Torch-free; the PyTorch dataset wrappers live in :mod:`crackseg.train.data.torch_dataset`.
"""

from crackseg.train.data.augment import Augment, TrainAugment
from crackseg.train.data.dataset import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    CrackDataset,
    DatasetError,
    read_split_file,
    split_file,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "Augment",
    "CrackDataset",
    "DatasetError",
    "TrainAugment",
    "read_split_file",
    "split_file",
]
