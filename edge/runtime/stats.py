"""Per-frame crack statistics a vehicle controller can act on without looking at the mask.

Definitions (all in pixels of the mask; the wire contracts in ``edge/WIRE.md`` carry them unchanged):

- ``crack_pixels``: number of crack pixels.
- ``coverage_pct``: ``100 * crack_pixels / (height * width)``, a percentage in [0, 100].
- ``components``: 8-connected crack regions.
- ``skeleton_px``: pixel count of the Zhang–Suen skeleton (8-connected, one pixel thick). A straight
  1-px line of length L gives L; diagonal steps count one pixel each, so diagonal cracks read up to
  ~30 % shorter than their Euclidean length.
- ``max_width_px``: ``2 * max(D) - 1`` where ``D`` is the exact Euclidean distance from each crack
  pixel centre to the nearest background pixel centre, with everything outside the frame counted as
  background. A 1-px line gives 1 and a bar of odd width w gives w; even widths read one less, the
  resolution of a pixel-centred medial axis.
- ``boxes``: bounding boxes of the largest components, by pixel count (ties in raster order of the
  component's first pixel).

Floats are rounded to float32 values so that they cross the ZeroMQ wire (f32 fields) unchanged.

Two modes (:data:`STATS_MODES`): ``exact`` computes the definitions above (the default); ``fast``
estimates ``skeleton_px`` and ``max_width_px`` without thinning, for about half the cost on real masks
(:func:`_fast_length_and_distance` gives the measured error). The other statistics are exact in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["STATS_MODES", "CrackBox", "CrackStats", "StatsMode", "check_stats_mode", "crack_stats", "skeletonize"]

StatsMode = Literal["exact", "fast"]
STATS_MODES: tuple[StatsMode, ...] = ("exact", "fast")
"""How skeleton length and width are measured: exactly, or estimated at a fraction of the cost."""


def check_stats_mode(mode: str) -> None:
    """Raise ``ValueError`` naming the modes unless ``mode`` is one of :data:`STATS_MODES`."""
    if mode not in STATS_MODES:
        raise ValueError(f"statistics mode must be one of {', '.join(STATS_MODES)}, got {mode!r}")


@dataclass(frozen=True)
class CrackBox:
    """Axis-aligned bounding box of one connected crack component.

    Attributes:
        x: left column (inclusive).
        y: top row (inclusive).
        w: width in pixels.
        h: height in pixels.
        pixels: crack pixels in the component (not the box area).
    """

    x: int
    y: int
    w: int
    h: int
    pixels: int


@dataclass(frozen=True)
class CrackStats:
    """Statistics of one binary crack mask; the defaults describe an empty mask (see module docstring)."""

    crack_pixels: int = 0
    coverage_pct: float = 0.0
    components: int = 0
    skeleton_px: int = 0
    max_width_px: float = 0.0
    boxes: tuple[CrackBox, ...] = ()


def _zhang_suen_luts() -> tuple[np.ndarray, np.ndarray]:
    """Deletion tables of the two Zhang–Suen sub-iterations, indexed by the 8-neighbour code.

    Bit k of the code is neighbour P(k+2) in Zhang and Suen's numbering: P2 = north, then clockwise
    (P3 = north-east, P4 = east, ..., P9 = north-west).
    """
    codes = np.arange(256, dtype=np.uint8)
    p = np.unpackbits(codes[:, None], axis=1, bitorder="little").astype(bool).T  # p[0] = P2 ... p[7] = P9
    b = p.sum(axis=0)
    a = (~p & np.roll(p, -1, axis=0)).sum(axis=0)  # 0 -> 1 transitions around P2, P3, ..., P9, P2
    common = (b >= 2) & (b <= 6) & (a == 1)
    p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
    first = common & ~(p2 & p4 & p6) & ~(p4 & p6 & p8)
    second = common & ~(p2 & p4 & p8) & ~(p2 & p6 & p8)
    return first, second


_DELETABLE = _zhang_suen_luts()


def _check_mask(mask: np.ndarray) -> None:
    if mask.ndim != 2 or mask.dtype != np.bool_:
        raise ValueError(f"expected a 2-D bool mask, got {mask.dtype} with shape {mask.shape}")


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning of a bool HxW mask to a one-pixel-thick, 8-connected skeleton.

    Produces exactly the textbook algorithm's output (parallel sub-iterations until nothing changes),
    but re-examines only pixels whose neighbourhood changed, so the cost follows the crack area rather
    than image area times iterations; the number of sub-iterations grows with the widest crack.

    Kept because it is the fastest thinning at hand. Per 512x512 frame of the bundled model's masks
    (24 DeepCrack, UAVCrackX and UAV75 test images, 2 % crack coverage, idle 2-core machine; issue 16):
    this function 2.15 ms, scikit-image ``skeletonize`` 2.16 ms, OpenCV contrib ``ximgproc.thinning``
    (Zhang–Suen) 5.92 ms. Neither library is faster, and both would be a new dependency of the runtime.
    """
    _check_mask(mask)
    h, w = mask.shape
    stride = w + 2
    img = np.zeros((h + 2, w + 2), np.uint8)  # the zero border removes all bounds checks
    img[1:-1, 1:-1] = mask
    flat = img.ravel()
    ring = (-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1)  # P2 ... P9
    slot = np.empty(flat.size, np.intp)

    def codes(idx: np.ndarray) -> np.ndarray:
        code = flat[idx + ring[0]]  # eight 1-D gathers beat one (n, 8) gather + packbits by ~3x
        for bit in range(1, 8):
            code |= flat[idx + ring[bit]] << bit
        return code

    def unique_on(idx: np.ndarray) -> np.ndarray:
        """Crack pixels in idx, each once; O(n), where np.unique would sort."""
        idx = idx[flat[idx] != 0]  # some were deleted since they were queued
        order = np.arange(idx.size)
        slot[idx] = order
        return idx[slot[idx] == order]

    on = np.flatnonzero(flat)
    contour = on[codes(on) != 0xFF]  # interior pixels (B = 8) are never deleted until a neighbour is
    pending = [contour, contour]  # pixels to (re)examine in sub-iteration 0 and 1, duplicates allowed
    step = 0
    while pending[0].size or pending[1].size:
        cand = unique_on(pending[step])
        gone = cand[_DELETABLE[step][codes(cand)]]
        flat[gone] = 0  # parallel update: every code above was read before this write
        touched = np.concatenate([gone + offset for offset in ring])
        touched = touched[flat[touched] != 0]
        pending[step] = touched
        pending[1 - step] = np.concatenate((pending[1 - step], touched))
        step = 1 - step
    return img[1:-1, 1:-1].astype(bool)


def _crack_box(cc: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the smallest box holding every component (``cc``: OpenCV stats, background dropped)."""
    left, top = cc[:, 0], cc[:, 1]
    right, bottom = left + cc[:, 2], top + cc[:, 3]
    return slice(int(top.min()), int(bottom.max())), slice(int(left.min()), int(right.max()))


def _max_distance(labels: np.ndarray, cc: np.ndarray) -> float:
    """``max(D)`` over all crack pixels (module docstring), computed inside a few components' boxes only.

    Exact, because of two facts about a component whose box is ``w x h``:

    * Walking from one of its pixels along a row or column, the first pixel outside the component is
      background (another component would touch it) and lies at most one pixel outside the box. So the
      nearest background pixel is inside the box grown by one pixel, and there ``D`` is computed exactly.
      Other components may count as background there: a path from the pixel to one of them that moves
      away at every step crosses background before it (the first pixel off the component), so they are
      never the nearest.
    * The same walk bounds ``D <= (min(w, h) + 1) / 2``. Components are taken widest bound first, and the
      search stops once no remaining bound can beat the best ``D`` found: the thin specks and hairlines
      that make up most components of a real mask are never transformed.
    """
    import cv2

    bounds = (np.minimum(cc[:, 2], cc[:, 3]) + 1) / 2.0
    best = 0.0
    for index in np.argsort(-bounds, kind="stable"):
        if bounds[index] <= best:
            break
        x, y, w, h = (int(v) for v in cc[index, :4])
        crop = labels[y : y + h, x : x + w] == index + 1  # other components count as background here
        padded = np.pad(crop.view(np.uint8), 1)  # the box grown by one pixel (and out of frame): background
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        best = max(best, float(dist.max()))
    return float(np.sqrt(np.round(best * best)))  # D^2 is an integer: drop OpenCV's size-dependent rounding


def _exact_length_and_distance(mask: np.ndarray, labels: np.ndarray, cc: np.ndarray) -> tuple[int, float]:
    """``skeleton_px`` and ``max(D)`` as the module docstring defines them."""
    return int(np.count_nonzero(skeletonize(mask[_crack_box(cc)]))), _max_distance(labels, cc)


def _fast_length_and_distance(mask: np.ndarray, labels: np.ndarray, cc: np.ndarray) -> tuple[int, float]:
    """Estimates of ``skeleton_px`` and ``max(D)`` (``--stats fast``), inside the box holding every crack.

    * Length: half the number of boundary pixels (OpenCV's border following, holes included). A crack
      is walked along both its sides, so this is its length where the crack is thin: a one-pixel crack of
      n pixels gives n - 1, a lone pixel 1. A crack of width w reads about 2w longer than its skeleton,
      which thinning shortens by about w/2 at each end; thinning's spurs on ragged edges are not counted.
    * ``D``: OpenCV's 5x5 chamfer distance (exact along rows and columns, within 2 % of Euclidean
      elsewhere), one transform of the box instead of the exact one per component.

    No thinning and no per-component loop: both are single OpenCV calls. Against ``exact``, per frame, on
    the bundled model's masks of 24 test images (the first 8 of DeepCrack, UAVCrackX and UAV75 test, resized
    to 512x512; 2.1 % crack coverage) and on the golden messages' masks (issue 16; script in the README):

    | statistic | mean / max relative error, model masks | golden masks |
    |---|---:|---:|
    | ``skeleton_px`` | 8.3 % / 21.0 % (signed: -11 % to +21 %, mean +2.1 %) | 9.4 % / 11.1 % |
    | ``max_width_px`` | 0.9 % / 2.0 % | 0 / 0 |
    | pixels, coverage, components, boxes | 0 | 0 |

    ``crack_stats`` CPU time, fast / exact: 0.52-0.54 (three runs), timed back to back on the same masks on
    a busy 2-core machine (a ratio; the absolute times there mean nothing). The connected-component
    labelling that both modes share is most of what remains. On drawn straight cracks of odd width w
    (tests/edge/test_stats.py) the length is within [-1, 2w + 2] px of ``exact``; where thinning leaves
    staircases (2-px-wide oblique cracks) ``exact`` reads up to 50 % long and this estimate does not.
    """
    del labels  # one signature with the exact measure
    import cv2

    crop = mask[_crack_box(cc)].view(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    length = sum(max(len(contour) // 2, 1) for contour in contours)  # a lone pixel: one point, one pixel long
    distance = cv2.distanceTransform(np.pad(crop, 1), cv2.DIST_L2, cv2.DIST_MASK_5)
    return length, float(distance.max())


_MEASURES: dict[StatsMode, Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[int, float]]] = {
    "exact": _exact_length_and_distance,
    "fast": _fast_length_and_distance,
}


def crack_stats(mask: np.ndarray, max_boxes: int = 16, mode: StatsMode = "exact") -> CrackStats:
    """Measure a bool HxW crack mask.

    Only the connected-component labelling reads the whole frame; the skeleton is thinned inside the
    box holding every crack, and the width is measured inside the boxes of the widest components only
    (:func:`_max_distance`), so the cost follows the cracks, not the frame. Both give exactly what the
    same operations on the whole frame give.

    Args:
        mask: crack mask, True = crack.
        max_boxes: keep the bounding boxes of at most this many largest components.
        mode: ``exact``, or ``fast`` to estimate skeleton length and width (see :data:`STATS_MODES`).

    Returns:
        The statistics defined in the module docstring; ``CrackStats()`` for an empty mask.
    """
    _check_mask(mask)
    if max_boxes < 0:
        raise ValueError(f"max_boxes must be >= 0, got {max_boxes}")
    check_stats_mode(mode)
    import cv2

    h, w = mask.shape
    n, labels, cc, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    cc = cc[1:]  # drop the background
    if n == 1:
        return CrackStats()
    areas = cc[:, cv2.CC_STAT_AREA]
    crack_pixels = int(areas.sum())
    largest = np.argsort(-areas, kind="stable")[:max_boxes]
    boxes = tuple(
        CrackBox(
            x=int(cc[i, cv2.CC_STAT_LEFT]),
            y=int(cc[i, cv2.CC_STAT_TOP]),
            w=int(cc[i, cv2.CC_STAT_WIDTH]),
            h=int(cc[i, cv2.CC_STAT_HEIGHT]),
            pixels=int(areas[i]),
        )
        for i in largest
    )
    skeleton_px, max_distance = _MEASURES[mode](mask, labels, cc)
    return CrackStats(
        crack_pixels=crack_pixels,
        coverage_pct=float(np.float32(100.0 * crack_pixels / (h * w))),
        components=n - 1,
        skeleton_px=skeleton_px,
        max_width_px=float(np.float32(2.0) * np.float32(max_distance) - np.float32(1.0)),
        boxes=boxes,
    )
