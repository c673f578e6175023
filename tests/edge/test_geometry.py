"""Frame geometry: native padding, resizing, and the tiling math (starts, coverage, blending, stitching)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.runtime.geometry import (
    NativeGeometry,
    ResizeGeometry,
    TileGeometry,
    blend_weights,
    make_geometry,
    tile_starts,
)

pytest.importorskip("cv2")

SPEC = ModelSpec(arch="test", size_multiple=32)


def pixelwise(batch: np.ndarray) -> np.ndarray:
    """A tile-exact "identity" network: each output pixel depends only on the same input pixel."""
    return (batch[:, :1] + 1.0) / 2.0


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "starts"),
    [
        (100, 32, 8, [0, 24, 48, 68]),  # stride 24; the last tile is moved back to end flush at 100
        (56, 32, 8, [0, 24]),
        (32, 32, 8, [0]),
        (20, 32, 8, [0]),  # shorter than a tile: one (padded) tile
        (64, 32, 0, [0, 32]),
        (65, 32, 0, [0, 32, 33]),
        (4096, 512, 64, [0, 448, 896, 1344, 1792, 2240, 2688, 3136, 3584]),
    ],
)
def test_tile_starts(length: int, tile: int, overlap: int, starts: list[int]) -> None:
    assert tile_starts(length, tile, overlap) == starts


@pytest.mark.parametrize("tile", [32, 64])
@pytest.mark.parametrize("overlap", [0, 8, 31])
def test_tiles_cover_every_pixel_with_at_least_the_overlap(tile: int, overlap: int) -> None:
    for length in range(1, 300):
        starts = tile_starts(length, tile, overlap)
        span = max(length, tile)
        covered = np.zeros(span, int)
        for s in starts:
            assert 0 <= s <= span - tile
            covered[s : s + tile] += 1
        assert covered.min() >= 1, (length, starts)
        assert starts[-1] + tile == span
        assert all(a + tile - b >= overlap for a, b in itertools.pairwise(starts))


def test_tile_starts_rejects_an_overlap_as_large_as_the_tile() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)


def test_blend_weights() -> None:
    assert np.array_equal(blend_weights(2, 3, 8, "mean"), np.ones((2, 3)))
    ramp = np.array([1, 2, 3, 3, 3, 3, 2, 1], float)  # min(i + 1, n - i, overlap = 3)
    assert np.array_equal(blend_weights(8, 8, 3, "feather"), np.outer(ramp, ramp))
    assert np.array_equal(blend_weights(2, 2, 0, "feather"), np.ones((2, 2)))  # no overlap: plain tiles
    with pytest.raises(ValueError, match="blend"):
        blend_weights(2, 2, 1, "median")  # type: ignore[arg-type]


@pytest.mark.parametrize("blend", ["mean", "feather"])
@pytest.mark.parametrize(("height", "width", "overlap"), [(100, 150, 8), (100, 150, 0), (70, 97, 20), (20, 24, 8)])
def test_stitching_a_tile_exact_model_gives_exactly_the_full_frame_result(
    blend: str, height: int, width: int, overlap: int
) -> None:
    image = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    tiled = TileGeometry(SPEC, (32, 64), overlap, blend)  # type: ignore[arg-type]
    batch = tiled.to_batch(image)
    assert batch.shape == (len(tiled.positions(height, width)), 3, 32, 64) and batch.dtype == np.float32
    stitched = tiled.from_batch(pixelwise(batch), height, width)
    native = NativeGeometry(SPEC)
    whole = native.from_batch(pixelwise(native.to_batch(image)), height, width)
    assert stitched.shape == (height, width) and stitched.dtype == np.float32
    assert np.array_equal(stitched, whole)


def test_overlaps_are_averaged_or_cross_faded() -> None:
    # A 32x56 frame in 32x32 tiles with overlap 8: tiles at x = 0 and 24 share columns 24..31.
    geometry = TileGeometry(SPEC, (32, 32), overlap=8, blend="mean")
    assert geometry.positions(32, 56) == [(0, 0), (0, 24)]
    outputs = np.stack([np.full((1, 32, 32), 0.2, np.float32), np.full((1, 32, 32), 0.6, np.float32)])
    row = geometry.from_batch(outputs, 32, 56)[5]
    assert row[:24] == pytest.approx(0.2) and row[24:32] == pytest.approx(0.4) and row[32:] == pytest.approx(0.6)
    feather = TileGeometry(SPEC, (32, 32), overlap=8, blend="feather").from_batch(outputs, 32, 56)[5]
    # In the overlap tile 0 weighs 8, 7, ..., 1 and tile 1 weighs 1, 2, ..., 8.
    expected = [(w0 * 0.2 + (9 - w0) * 0.6) / 9 for w0 in range(8, 0, -1)]
    assert feather[:24] == pytest.approx(0.2) and feather[32:] == pytest.approx(0.6)
    assert feather[24:32] == pytest.approx(expected)
    assert feather[24] == pytest.approx(2.2 / 9) and feather[31] == pytest.approx(5.0 / 9)


def test_from_batch_checks_the_tile_count() -> None:
    geometry = TileGeometry(SPEC, (32, 32), overlap=8)
    with pytest.raises(ValueError, match="expected 2 tile outputs"):
        geometry.from_batch(np.zeros((3, 1, 32, 32), np.float32), 32, 56)


def test_native_geometry_pads_to_the_multiple_and_crops_back() -> None:
    image = np.zeros((50, 70, 3), np.uint8)
    geometry = NativeGeometry(SPEC)
    batch = geometry.to_batch(image)
    assert batch.shape == (1, 3, 64, 96)
    assert geometry.from_batch(np.ones((1, 1, 64, 96), np.float32), 50, 70).shape == (50, 70)


def test_resize_geometry_maps_to_the_input_size_and_back() -> None:
    geometry = ResizeGeometry(SPEC, (64, 96))
    image = np.full((120, 200, 3), 255, np.uint8)
    batch = geometry.to_batch(image)
    assert batch.shape == (1, 3, 64, 96) and np.allclose(batch, 1.0)  # 255 -> +1 with mean = std = 127.5
    prob = geometry.from_batch(np.full((1, 1, 64, 96), 0.25, np.float32), 120, 200)
    assert prob.shape == (120, 200) and np.allclose(prob, 0.25)


def test_sizes_must_be_multiples_and_strategies_exclusive() -> None:
    with pytest.raises(ValueError, match="multiples"):
        ResizeGeometry(SPEC, (60, 64))
    with pytest.raises(ValueError, match="multiples"):
        TileGeometry(SPEC, (64, 50))
    with pytest.raises(ValueError, match="overlap"):
        TileGeometry(SPEC, (32, 64), overlap=32)
    with pytest.raises(ValueError, match="either"):
        make_geometry(SPEC, input_size=(64, 64), tile=(64, 64))
    assert isinstance(make_geometry(SPEC), NativeGeometry)
    assert isinstance(make_geometry(SPEC, input_size=(64, 64)), ResizeGeometry)
    assert isinstance(make_geometry(SPEC, tile=(64, 64), overlap=16), TileGeometry)
