"""How a frame of any size becomes network input, and the network output a full-resolution probability map.

Three strategies, one interface (``to_batch`` on the preprocess thread, ``from_batch`` on the postprocess
thread), chosen once per run:

* :class:`NativeGeometry` (default): the frame at its own size, reflect-padded to the size multiple and
  the output cropped back; exactly what the evaluator does, so accuracy figures carry over unchanged.
* :class:`ResizeGeometry`: the frame resized to a fixed input size, the output resized back (a static
  engine with one input shape; thin cracks may vanish when shrinking).
* :class:`TileGeometry`: frames larger than the model input (4K drone video) cut into overlapping tiles
  of a fixed size, inferred as one batch and stitched back. Overlaps are averaged (``mean``) or
  cross-faded linearly (``feather``), which hides the seams of tile borders where the network sees less
  context.

Tiling math: along an axis of length ``L`` with tile ``T`` and overlap ``O`` the starts are ``0, S, 2S,
...`` with stride ``S = T - O``, the last one moved back to ``L - T`` so the tiles end flush with the
frame; a frame shorter than a tile is reflect-padded to it. Blend weights are small integers and the sums
are float64, so when every tile reports the same value for a pixel the stitched value is bit-identical.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.preprocess import crop_to, pad_to_multiple, to_network_input

__all__ = [
    "BLENDS",
    "Geometry",
    "NativeGeometry",
    "ResizeGeometry",
    "TileGeometry",
    "blend_weights",
    "make_geometry",
    "tile_starts",
]

Blend = Literal["mean", "feather"]
BLENDS: tuple[Blend, ...] = ("mean", "feather")


def _check_size(name: str, size: Size, multiple: int) -> None:
    height, width = size
    if height < 1 or width < 1 or height % multiple or width % multiple:
        raise ValueError(f"{name} {width}x{height} (WxH): both sides must be positive multiples of {multiple}")


class Geometry(ABC):
    """Maps an ``HxWx3`` uint8 RGB frame to an ``Nx3xhxw`` float32 batch, and ``Nx1xhxw`` back to ``HxW``."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @property
    def network_input(self) -> Size | None:
        """The size of every batch item, or ``None`` when it follows the frame size."""
        return None

    @abstractmethod
    def to_batch(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Network input for one frame, normalized as the spec says."""

    @abstractmethod
    def from_batch(self, prob: np.ndarray, height: int, width: int) -> NDArray[np.float32]:
        """The ``height x width`` probability map of the frame ``to_batch`` was given."""

    thresholds_commute = False
    """``from_batch`` only crops, so the batch output may be thresholded first (on a GPU): :meth:`mask_from_batch`."""

    def mask_from_batch(self, mask: NDArray[np.bool_], height: int, width: int) -> NDArray[np.bool_]:
        """The frame's mask from the ``Nx1xhxw`` mask of the batch output, where :attr:`thresholds_commute`."""
        raise NotImplementedError(f"{type(self).__name__} resamples probabilities: threshold after from_batch")


class NativeGeometry(Geometry):
    """Native resolution, reflect-padded to the spec's size multiple (the evaluator's protocol)."""

    thresholds_commute = True

    def mask_from_batch(self, mask: NDArray[np.bool_], height: int, width: int) -> NDArray[np.bool_]:
        return np.ascontiguousarray(crop_to(mask[0, 0], height, width))

    def to_batch(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        padded, _ = pad_to_multiple(to_network_input(image, self.spec), self.spec.size_multiple)
        return padded  # type: ignore[return-value]  # pad_to_multiple keeps the float32 dtype

    def from_batch(self, prob: np.ndarray, height: int, width: int) -> NDArray[np.float32]:
        cropped: NDArray[np.float32] = crop_to(prob[0, 0], height, width)
        return cropped


class ResizeGeometry(Geometry):
    """Every frame resized to ``size``; the probability resized back bilinearly."""

    def __init__(self, spec: ModelSpec, size: Size) -> None:
        super().__init__(spec)
        self.size = Size(*size)  # a plain (height, width) tuple works too
        _check_size("input size", self.size, spec.size_multiple)

    @property
    def network_input(self) -> Size | None:
        return self.size

    def to_batch(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        import cv2

        height, width = self.size
        shrinking = height <= image.shape[0] and width <= image.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR  # area averaging does not alias
        resized = cast(NDArray[np.uint8], cv2.resize(image, (width, height), interpolation=interpolation))
        return to_network_input(resized, self.spec)

    def from_batch(self, prob: np.ndarray, height: int, width: int) -> NDArray[np.float32]:
        import cv2

        resized: NDArray[np.float32] = cv2.resize(prob[0, 0], (width, height), interpolation=cv2.INTER_LINEAR)
        return resized


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` overlapping by at least ``overlap`` that cover ``length``.

    ``tile_starts(100, 32, 8) == [0, 24, 48, 68]``; a length up to one tile gives ``[0]``.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must lie in [0, tile = {tile}), got {overlap}")
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return [min(i * stride, length - tile) for i in range(count)]


def blend_weights(height: int, width: int, overlap: int, blend: Blend) -> NDArray[np.float64]:
    """Per-pixel weight of one tile: all ones (``mean``), or integer ramps ``1..overlap`` at the borders.

    A feathered tile weighs pixel ``i`` of an axis of length ``n`` by ``min(i + 1, n - i, overlap)``; across
    an overlap of ``O`` pixels the two neighbours' weights sum to ``O + 1``, a linear cross-fade.
    """
    if blend == "mean":
        return np.ones((height, width), np.float64)
    if blend != "feather":
        raise ValueError(f"unknown blend {blend!r}; expected one of {BLENDS}")
    cap = max(overlap, 1)

    def ramp(n: int) -> NDArray[np.float64]:
        i = np.arange(n)
        return np.minimum(np.minimum(i + 1, n - i), cap).astype(np.float64)

    return np.outer(ramp(height), ramp(width))


class TileGeometry(Geometry):
    """Overlapping fixed-size tiles, stitched back to the full frame.

    Args:
        spec: the model spec (normalization, size multiple).
        tile: the tile size, both sides multiples of the size multiple.
        overlap: minimum overlap between neighbouring tiles, in pixels.
        blend: ``mean`` or ``feather`` (see :func:`blend_weights`).
    """

    def __init__(self, spec: ModelSpec, tile: Size, overlap: int = 64, blend: Blend = "feather") -> None:
        super().__init__(spec)
        tile = Size(*tile)  # a plain (height, width) tuple works too
        _check_size("tile size", tile, spec.size_multiple)
        if not 0 <= overlap < min(tile):
            raise ValueError(f"tile overlap must lie in [0, {min(tile)}), got {overlap}")
        self.tile, self.overlap, self.blend = tile, overlap, blend
        self._weights = blend_weights(*tile, overlap, blend)
        self._norm_cache: tuple[tuple[int, int], NDArray[np.float64]] | None = None  # keyed by the array shape

    @property
    def network_input(self) -> Size | None:
        return self.tile

    def positions(self, height: int, width: int) -> list[tuple[int, int]]:
        """(y, x) of every tile of a ``height x width`` frame, row-major: the batch order."""
        tile_h, tile_w = self.tile
        ys = tile_starts(max(height, tile_h), tile_h, self.overlap)
        xs = tile_starts(max(width, tile_w), tile_w, self.overlap)
        return [(y, x) for y in ys for x in xs]

    def to_batch(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        tile_h, tile_w = self.tile
        height, width = image.shape[:2]
        padded = image
        if height < tile_h or width < tile_w:
            padding = ((0, max(0, tile_h - height)), (0, max(0, tile_w - width)), (0, 0))
            padded = np.pad(image, padding, mode="reflect")
        tiles = np.stack([padded[y : y + tile_h, x : x + tile_w] for y, x in self.positions(height, width)])
        return to_network_input(tiles, self.spec)

    def from_batch(self, prob: np.ndarray, height: int, width: int) -> NDArray[np.float32]:
        tile_h, tile_w = self.tile
        positions = self.positions(height, width)
        if prob.shape[0] != len(positions):
            raise ValueError(f"expected {len(positions)} tile outputs for a {width}x{height} frame, got {prob.shape}")
        full_h, full_w = max(height, tile_h), max(width, tile_w)
        total = np.zeros((full_h, full_w), np.float64)
        for (y, x), tile_prob in zip(positions, prob[:, 0], strict=True):
            total[y : y + tile_h, x : x + tile_w] += self._weights * tile_prob
        total /= self._normalizer(full_h, full_w, positions)
        return total[:height, :width].astype(np.float32)

    def _normalizer(self, height: int, width: int, positions: list[tuple[int, int]]) -> NDArray[np.float64]:
        """Sum of the tile weights at each pixel; positive everywhere because the tiles cover the frame."""
        if self._norm_cache is None or self._norm_cache[0] != (height, width):
            tile_h, tile_w = self.tile
            norm = np.zeros((height, width), np.float64)
            for y, x in positions:
                norm[y : y + tile_h, x : x + tile_w] += self._weights
            self._norm_cache = ((height, width), norm)
        return self._norm_cache[1]


def make_geometry(
    spec: ModelSpec,
    input_size: Size | None = None,
    tile: Size | None = None,
    overlap: int = 64,
    blend: Blend = "feather",
) -> Geometry:
    """Native (neither size given), resized (``input_size``) or tiled (``tile``) processing."""
    if input_size is not None and tile is not None:
        raise ValueError("choose either a fixed input size or tiling, not both")
    if tile is not None:
        return TileGeometry(spec, tile, overlap, blend)
    if input_size is not None:
        return ResizeGeometry(spec, input_size)
    return NativeGeometry(spec)
