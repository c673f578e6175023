"""Training data: augmentation and the PyTorch dataset wrappers.

The torch-free dataset reader and the committed splits are part of the evaluation core,
:mod:`crackseg.edge.evaluation.dataset`, which every stage may import.
"""

from crackseg.train.data.augment import Augment, TrainAugment

__all__ = ["Augment", "TrainAugment"]
