"""Crack-segmentation metrics of the DeepCrack protocol, streamed over a dataset in pure numpy.

The reference is DeepSegmentor ``eval/prf_metrics.py`` (the official DeepCrack evaluation, which SCNet
reuses): a pixel is crack when ``p > t`` for ``t = 0.00, 0.01, ..., 0.99``, and tp/fp/fn are pooled over the
whole dataset before precision and recall are taken. :class:`CrackMetrics` reproduces it without keeping
images: each update bins the probabilities once against the sorted thresholds (``searchsorted``, so
``p > t`` is exact and ``p == t`` is background) and turns the bin histograms into per-threshold counts
with a reversed cumulative sum. Comparisons are made in float64, as the reference does with ``pred / 255``.

Zero-division policy, used for every ratio: a ratio whose denominator is 0 is 0 (precision with no
predicted crack, recall with no GT crack, F1 with P + R = 0, an IoU of a class absent from both maps).
The reference reports P = 1 where nothing is predicted; F1 and AP are the same either way (R = 0 there),
only the reported precision curve differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["REFERENCE", "CrackMetrics", "MetricsReport", "binarize", "f1_score", "mask_f1"]

REFERENCE = "deepcrack-prf (DeepSegmentor eval/prf_metrics.py)"

_Counts = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]
_Mask = npt.NDArray[np.bool_]

# Region-wise F1 (SCNet) in integer arithmetic, so the 5 % and 50 % boundaries are exact:
# a patch is positive when count / area >= 1 / _REGION_POSITIVE, a hit when overlap / count >= 1 / _REGION_HIT.
_REGION_POSITIVE = 20
_REGION_HIT = 2


@dataclass(frozen=True)
class MetricsReport:
    """Scores of one dataset under the protocol it names; the curves are indexed like ``thresholds``.

    Args:
        protocol: how the numbers were obtained (reference, threshold rule, tolerance); compare only equal ones.
        ods_f1: best dataset-pooled F1 over the thresholds (optimal dataset scale).
        ods_threshold: the threshold of ``ods_f1`` (the lowest one on ties); the operating threshold to ship.
        ois_f1: mean over images of each image's best F1 (optimal image scale).
        ap: area under the dataset PR curve, ``sum_k (R_k - R_{k+1}) * P_k`` with ``R`` after the last threshold = 0.
        crack_iou: crack-class IoU at ``ods_threshold``, pixel counts pooled over the dataset.
        miou: mean of the background and crack IoU at ``ods_threshold``.
        region_f1: SCNet region-wise F1 on square patches at ``ods_threshold``.
        images: number of images scored.
        empty_gt_images: images whose GT has no crack pixel (their OIS policy is described in :class:`CrackMetrics`).
        thresholds: the thresholds, ascending; a pixel is crack when ``p > t``.
        precision: dataset precision per threshold.
        recall: dataset recall per threshold.
    """

    protocol: str
    ods_f1: float
    ods_threshold: float
    ois_f1: float
    ap: float
    crack_iou: float
    miou: float
    region_f1: float
    images: int
    empty_gt_images: int
    thresholds: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]

    def curve_index(self, threshold: float) -> int:
        """Index of the curve point whose threshold is nearest to ``threshold``."""
        return int(np.argmin(np.abs(np.asarray(self.thresholds) - threshold)))

    def f1_at(self, threshold: float) -> float:
        """Dataset F1 at the curve point nearest to ``threshold`` (a shipped model's operating threshold)."""
        k = self.curve_index(threshold)
        return float(f1_score(self.precision[k], self.recall[k]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict in field order (headline scores first, curves as lists)."""
        return {
            field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
            for field in dataclasses.fields(self)
        }


class CrackMetrics:
    """Streaming accumulator of the DeepCrack metrics: ``update`` per image, ``compute`` once at the end.

    Memory is O(thresholds) for the dataset plus one float per image (its best F1); no image is kept.

    Metrics and their policies:
        - ODS/AP/IoU pool tp/fp/fn/tn over the dataset at each threshold.
        - OIS averages each image's best F1. An image whose GT has no crack scores F1 = 1 at a threshold
          where it predicts no crack pixel and 0 elsewhere, so its best F1 is 1 if some threshold leaves its
          prediction empty; such images are counted in ``empty_gt_images``.
        - Region F1 (SCNet) tiles each image from the top-left into ``region_patch`` squares; border patches are
          kept with their true pixel count. A patch is GT-positive when >= 5 % of its pixels are GT crack, and a
          GT-positive patch is found when >= 50 % of its GT crack pixels are predicted. A patch is
          predicted-positive when >= 5 % of its pixels are predicted crack, and correct when >= 50 % of its
          predicted crack pixels are GT crack. Recall = found / GT-positive, precision = correct /
          predicted-positive. The patch counts are accumulated per threshold, so the score is exact at the ODS
          threshold known only at the end.
        - With ``tolerance_px = r > 0`` precision, recall and hence ODS, OIS and AP are relaxed BSDS-style: a
          predicted crack pixel is a true positive when a GT crack pixel lies within Euclidean distance r, and a
          GT crack pixel is found when a predicted crack pixel lies within r. Matches are not one-to-one (no
          BSDS bipartite assignment), and the radius test is a max over the exact Euclidean disc, so no distance
          transform or cv2 is needed. IoU and region F1 stay exact.

    Args:
        thresholds: strictly increasing thresholds in [0, 1]; defaults to ``0.00, 0.01, ..., 0.99``.
        tolerance_px: matching radius in pixels; 0 (default) scores exact pixels as the reference does.
        region_patch: side of the square patches of region-wise F1, in pixels.
    """

    def __init__(self, thresholds: npt.ArrayLike | None = None, tolerance_px: int = 0, region_patch: int = 32) -> None:
        t = np.arange(100) / 100 if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all() or (np.diff(t) <= 0).any():
            raise ValueError(f"thresholds must be a non-empty, strictly increasing 1-D sequence, got {t!r}")
        if t[0] < 0 or t[-1] > 1:
            raise ValueError(f"thresholds must lie in [0, 1], got [{t[0]}, {t[-1]}]")
        if tolerance_px < 0:
            raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
        if region_patch < 1:
            raise ValueError(f"region_patch must be >= 1, got {region_patch}")
        self.thresholds: _Floats = t
        self.tolerance_px = int(tolerance_px)
        self.region_patch = int(region_patch)
        self.reset()

    @property
    def protocol(self) -> str:
        """The protocol string stamped on every report of this accumulator."""
        t = self.thresholds
        text = (
            f"{REFERENCE}: p > t, t = {t[0]:.2f}..{t[-1]:.2f} ({t.size} thresholds), dataset-pooled counts; "
            f"region F1 on {self.region_patch} px patches"
        )
        if self.tolerance_px:
            text += f"; tolerance {self.tolerance_px} px (relaxed P/R for ODS, OIS, AP; IoU and region F1 exact)"
        return text

    def reset(self) -> None:
        """Forgets every image, e.g. between validation epochs."""
        n = self.thresholds.size
        self._tp = np.zeros(n, np.int64)  # GT crack pixels predicted crack
        self._fp = np.zeros(n, np.int64)  # background pixels predicted crack
        self._matched_pred = np.zeros(n, np.int64)  # predicted crack pixels within tolerance of GT crack
        self._found_gt = np.zeros(n, np.int64)  # GT crack pixels within tolerance of a predicted crack pixel
        self._gt_pixels = 0
        self._bg_pixels = 0
        self._region_gt = 0  # GT-positive patches
        self._region_found = np.zeros(n, np.int64)
        self._region_pred = np.zeros(n, np.int64)  # predicted-positive patches
        self._region_correct = np.zeros(n, np.int64)
        self._best_f: list[float] = []
        self._empty_gt = 0

    def update(self, prob: npt.ArrayLike, gt: npt.ArrayLike) -> None:
        """Adds one image.

        Args:
            prob: HxW crack probabilities in [0, 1].
            gt: HxW ground truth, boolean or 0/1.
        """
        p, g = _validated(prob, gt)
        n = self.thresholds.size
        bins = np.searchsorted(self.thresholds, p.ravel(), side="left")  # crack at threshold k iff k < bins
        g_flat = g.ravel()
        pred = _count_above(bins, n)[0]
        tp = _count_above(bins[g_flat], n)[0]
        if self.tolerance_px:
            near_gt = _dilate(g, self.tolerance_px).ravel()
            reach = _dilate(p, self.tolerance_px).ravel()[g_flat]  # best probability within r of each GT pixel
            matched_pred = _count_above(bins[near_gt], n)[0]
            found_gt = _count_above(np.searchsorted(self.thresholds, reach, side="left"), n)[0]
        else:
            matched_pred = found_gt = tp
        gt_pixels = int(g_flat.sum())

        self._tp += tp
        self._fp += pred - tp
        self._matched_pred += matched_pred
        self._found_gt += found_gt
        self._gt_pixels += gt_pixels
        self._bg_pixels += g.size - gt_pixels
        if gt_pixels:
            best_f = float(f1_score(_ratio(matched_pred, pred), _ratio(found_gt, gt_pixels)).max())
        else:
            self._empty_gt += 1
            best_f = float((pred == 0).any())
        self._best_f.append(best_f)
        self._update_regions(bins, g)

    def _update_regions(self, bins: npt.NDArray[np.intp], g: _Mask) -> None:
        """Accumulates, per threshold, the patch counts of region-wise F1 for one image."""
        n, s = self.thresholds.size, self.region_patch
        (h, w), cols = g.shape, -(-g.shape[1] // s)
        n_patches = -(-h // s) * cols
        patch = ((np.arange(h) // s)[:, None] * cols + (np.arange(w) // s)[None, :]).ravel()
        g_flat = g.ravel()
        area = np.bincount(patch, minlength=n_patches)[:, None]
        gt_count = np.bincount(patch[g_flat], minlength=n_patches)[:, None]
        pred = _count_above(bins, n, patch, n_patches)
        tp = _count_above(bins[g_flat], n, patch[g_flat], n_patches)
        gt_pos = _REGION_POSITIVE * gt_count >= area
        pred_pos = _REGION_POSITIVE * pred >= area
        self._region_gt += int(gt_pos.sum())
        self._region_found += (gt_pos & (_REGION_HIT * tp >= gt_count)).sum(axis=0)
        self._region_pred += pred_pos.sum(axis=0)
        self._region_correct += (pred_pos & (_REGION_HIT * tp >= pred)).sum(axis=0)

    def compute(self) -> MetricsReport:
        """Scores every image added since construction or the last ``reset``."""
        if not self._best_f:
            raise ValueError("no images to score: call update() before compute()")
        precision = _ratio(self._matched_pred, self._tp + self._fp)
        recall = _ratio(self._found_gt, self._gt_pixels)
        f1 = f1_score(precision, recall)
        k = int(np.argmax(f1))  # first maximum, i.e. the lowest threshold on ties, as the reference's argmax
        tp, fp = self._tp[k], self._fp[k]
        fn, tn = self._gt_pixels - tp, self._bg_pixels - fp
        crack_iou = float(_ratio(tp, tp + fp + fn))
        background_iou = float(_ratio(tn, tn + fn + fp))
        region_f1 = f1_score(
            _ratio(self._region_correct[k], self._region_pred[k]), _ratio(self._region_found[k], self._region_gt)
        )
        return MetricsReport(
            protocol=self.protocol,
            ods_f1=float(f1[k]),
            ods_threshold=float(self.thresholds[k]),
            ois_f1=float(np.mean(self._best_f)),
            ap=float(np.sum((recall - np.append(recall[1:], 0.0)) * precision)),
            crack_iou=crack_iou,
            miou=(crack_iou + background_iou) / 2,
            region_f1=float(region_f1),
            images=len(self._best_f),
            empty_gt_images=self._empty_gt,
            thresholds=tuple(float(t) for t in self.thresholds),
            precision=tuple(float(v) for v in precision),
            recall=tuple(float(v) for v in recall),
        )


def _validated(prob: npt.ArrayLike, gt: npt.ArrayLike) -> tuple[_Floats, _Mask]:
    """Checks one (prob, gt) pair and returns it as float64 probabilities and a boolean mask."""
    p = np.asarray(prob, dtype=np.float64)
    g = np.asarray(gt)
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"prob must be a non-empty HxW map, got shape {p.shape}")
    if g.shape != p.shape:
        raise ValueError(f"gt shape {g.shape} does not match prob shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("prob contains NaN")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"prob must lie in [0, 1], got values in [{p.min()}, {p.max()}]")
    if g.dtype != np.bool_:
        if not np.isin(g, (0, 1)).all():
            raise ValueError(f"gt must be boolean or hold only 0 and 1 (binarise 0/255 masks first), got {g.dtype}")
        g = g.astype(np.bool_)
    return p, g


def _count_above(
    bins: npt.NDArray[np.intp], n: int, group: npt.NDArray[np.intp] | None = None, n_groups: int = 1
) -> _Counts:
    """Pixels predicted crack at each of ``n`` thresholds, per group: shape (n_groups, n).

    ``bins`` holds, per pixel, how many thresholds lie strictly below its probability, so the pixel is crack
    at threshold k iff ``bins > k``: the count is the reversed cumulative histogram of ``bins`` after bin k.
    """
    width = n + 1
    flat = bins if group is None else group * width + bins
    hist = np.bincount(flat, minlength=n_groups * width).reshape(n_groups, width)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]


def _dilate(a: npt.NDArray[Any], radius: int) -> npt.NDArray[Any]:
    """Maximum of ``a`` over the Euclidean disc of ``radius`` around each pixel; outside the image counts as 0."""
    h, w = a.shape
    padded = np.pad(a, radius)
    out = np.zeros_like(a)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                np.maximum(out, padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w], out=out)
    return out


def _ratio(num: npt.ArrayLike, den: npt.ArrayLike) -> _Floats:
    """``num / den`` elementwise, 0 where ``den`` is 0 (the module's zero-division policy)."""
    num_a, den_a = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(num_a.shape, den_a.shape))
    return np.divide(num_a, den_a, out=out, where=den_a != 0)


def f1_score(precision: npt.ArrayLike, recall: npt.ArrayLike) -> _Floats:
    """Harmonic mean of precision and recall, elementwise, 0 where both are 0."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    return _ratio(2 * p * r, p + r)


def binarize(prob: npt.ArrayLike, threshold: float) -> _Mask:
    """The one binarization rule: a pixel is crack when ``p > threshold`` (``p == threshold`` is background)."""
    return np.asarray(prob) > threshold


def mask_f1(predicted: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """F1 of a boolean ``predicted`` mask against ``truth``: ``2tp / (2tp + fp + fn)``, 1 when both are empty."""
    p, t = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"mask shapes differ: {p.shape} vs {t.shape}")
    tp = int(np.count_nonzero(p & t))
    errors = int(np.count_nonzero(p ^ t))
    return 1.0 if tp + errors == 0 else 2 * tp / (2 * tp + errors)
