"""The one evaluator: scores any backend (checkpoint, ONNX FP32/FP16/INT8, engine) with the same code.

Images are segmented at native resolution (padded to the model's size multiple, output cropped back),
never resized, so the ground truth is scored exactly as annotated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from crackseg.edge.backends.base import Runner
from crackseg.edge.backends.preprocess import crop_to, pad_to_multiple, to_network_input
from crackseg.edge.evaluation.dataset import CrackDataset
from crackseg.edge.evaluation.metrics import CrackMetrics, MetricsReport

__all__ = ["ImageCallback", "evaluate", "evaluate_protocols", "predict_probability"]

ImageCallback = Callable[[str, np.ndarray, np.ndarray, np.ndarray], None]
"""Called per image with ``(stem, image_rgb, probability, ground_truth)``, e.g. to write overlays."""


def predict_probability(runner: Runner, image: np.ndarray) -> np.ndarray:
    """Crack probability ``HxW`` for one ``HxWx3`` uint8 RGB image at its native resolution."""
    padded, (height, width) = pad_to_multiple(to_network_input(image, runner.spec), runner.spec.size_multiple)
    prob = runner.infer(padded)
    return crop_to(prob[0, 0], height, width)


def evaluate(
    runner: Runner,
    dataset: CrackDataset,
    tolerance_px: int = 0,
    on_image: ImageCallback | None = None,
    progress: bool = True,
) -> MetricsReport:
    """Scores ``runner`` on every image of ``dataset`` with the reference protocol (see ``CrackMetrics``)."""
    return evaluate_protocols(runner, dataset, (tolerance_px,), on_image, progress)[0]


def evaluate_protocols(
    runner: Runner,
    dataset: CrackDataset,
    tolerances_px: Sequence[int],
    on_image: ImageCallback | None = None,
    progress: bool = True,
) -> list[MetricsReport]:
    """Scores ``runner`` once per image under each tolerance (0 is the strict protocol), in the given order."""
    metrics = [CrackMetrics(tolerance_px=tolerance) for tolerance in tolerances_px]
    for index in tqdm(range(len(dataset)), desc="evaluate", unit="img", disable=not progress, leave=False):
        image, truth = dataset.load(index)
        prob = predict_probability(runner, image)
        for protocol in metrics:
            protocol.update(prob, truth)
        if on_image is not None:
            on_image(dataset.stems[index], image, prob, truth)
    return [protocol.compute() for protocol in metrics]
