"""Numerical parity of an exported model with its checkpoint, measured on real crack images.

Both models segment each image exactly as the evaluator does (native resolution, padded to the size
multiple, cropped back: ``crackseg.edge.evaluation.evaluate.predict_probability``), and the crack probability
maps are compared pixel by pixel. Without a dataset, synthetic crack images stand in (and the report
says so): real photographs exercise the value ranges a deployed model sees, noise does not.

Heavy imports (the evaluator, the dataset reader, OpenCV) happen when used, so that importing this
module (and the ``export`` command) stays cheap on a Jetson that only builds engines.

Tolerances, on the largest probability difference over all pixels. FP32 ONNX agrees with PyTorch to
float rounding: default 1e-4 (a scnet-t trained on DeepCrack to validation F1 0.80: 6e-5 on four
validation images at native resolution). An FP16 graph rounds every activation to 11 significant
bits, and the unpooling's choice of the maximum in each window is discontinuous, so a few pixels move
much more than the rest: default 0.1 (the same model in FP16 under ONNX Runtime's CPU provider, eight
validation images: largest 0.058, mean 2e-5, at most 5 of 209k pixels per image changing their crack
decision). A broken conversion shows errors near 1, or NaN. The report also counts the
pixels whose crack / no-crack decision at the model's threshold differs, the figure that matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.size import Size
from crackseg.edge.backends.base import Runner

__all__ = [
    "FP16_TOLERANCE",
    "FP32_TOLERANCE",
    "ParityError",
    "ParityReport",
    "compare_runners",
    "dataset_images",
    "fit_to",
]

FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 0.1

Sample = tuple[str, np.ndarray]
"""``(name, HxWx3 uint8 RGB image)``."""


class ParityError(CracksegError):
    """An exported model's output differs from its checkpoint's by more than the tolerance."""


@dataclass(frozen=True)
class ParityReport:
    """Largest and mean absolute probability difference, and changed crack decisions, over all compared pixels."""

    source: str
    images: int
    max_abs_error: float
    mean_abs_error: float
    worst_image: str
    tolerance: float
    flipped: int = 0
    pixels: int = 0
    threshold: float = 0.5

    @property
    def passed(self) -> bool:
        return self.max_abs_error <= self.tolerance

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"parity on {self.images} {self.source}: max abs error {self.max_abs_error:.2e} "
            f"(worst: {self.worst_image}), mean {self.mean_abs_error:.2e}, {self.flipped} of {self.pixels} pixels "
            f"change their decision at threshold {self.threshold:.2f}; tolerance {self.tolerance:.0e}: {verdict}"
        )


def fit_to(image: np.ndarray, size: Size | None) -> np.ndarray:
    """The image itself, or for a static-shape model its top-left ``size`` window, reflect-padded if smaller."""
    if size is None:
        return image
    height, width = size
    window = image[:height, :width]
    pad = ((0, height - window.shape[0]), (0, width - window.shape[1]), (0, 0))
    return np.pad(window, pad, mode="reflect") if any(p[1] for p in pad) else window


def dataset_images(root: str | Path, split: str | None, count: int) -> Iterator[Sample]:
    """The first ``count`` images of a dataset split (stems in the split's order)."""
    from crackseg.edge.evaluation.dataset import CrackDataset, resolve_split

    dataset = CrackDataset(root, resolve_split(split) if split else None)
    for index in range(min(count, len(dataset))):
        image, _ = dataset.load(index)
        yield dataset.stems[index], image


def compare_runners(
    reference: Runner,
    candidate: Runner,
    samples: Iterable[Sample],
    tolerance: float,
    source: str,
    size: Size | None = None,
) -> ParityReport:
    """Runs both (active) runners on every sample and reports the largest probability difference.

    Args:
        size: the input size of a static-shape model; images are cropped or padded to it.
    """
    from crackseg.edge.evaluation.evaluate import predict_probability
    from crackseg.edge.evaluation.metrics import binarize

    threshold = reference.spec.threshold
    worst, worst_name, total, pixels, flipped, count = -1.0, "", 0.0, 0, 0, 0
    for name, image in samples:
        fitted = fit_to(image, size)
        expected, actual = predict_probability(reference, fitted), predict_probability(candidate, fitted)
        error = np.nan_to_num(np.abs(actual - expected), nan=np.inf)  # NaN is the worst error, not a pass
        if float(error.max()) > worst:
            worst, worst_name = float(error.max()), name
        total += float(error.sum(dtype=np.float64))
        pixels += error.size
        flipped += int(np.count_nonzero(binarize(actual, threshold) != binarize(expected, threshold)))
        count += 1
    if not count:
        raise ParityError(f"no images to compare in {source}")
    return ParityReport(source, count, worst, total / pixels, worst_name, tolerance, flipped, pixels, threshold)
