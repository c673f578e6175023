"""Crack statistics against hand-computed masks, the fast skeleton against the textbook loop, and the
statistics measured inside the cracks' boxes against the same operations on the whole frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.runtime.sources.synthetic import CrackSynth
from crackseg.edge.runtime.stats import CrackBox, CrackStats, crack_stats, skeletonize
from crackseg.edge.runtime.wire import MaskMessage

cv2 = pytest.importorskip("cv2")

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _canvas(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width), bool)


def _zhang_suen_reference(mask: np.ndarray) -> np.ndarray:
    """Zhang & Suen (1984) written out pixel by pixel: slow, but obviously the published algorithm."""
    img = np.pad(mask.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            deletions = []
            for y, x in zip(*np.nonzero(img), strict=True):
                p = [
                    img[y - 1, x], img[y - 1, x + 1], img[y, x + 1], img[y + 1, x + 1],
                    img[y + 1, x], img[y + 1, x - 1], img[y, x - 1], img[y - 1, x - 1],
                ]  # fmt: skip
                p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
                b = sum(p)
                a = sum(p[k] == 0 and p[(k + 1) % 8] == 1 for k in range(8))
                first = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
                second = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
                ok = first if step == 0 else second
                if 2 <= b <= 6 and a == 1 and ok:
                    deletions.append((y, x))
            for y, x in deletions:
                img[y, x] = 0
            changed |= bool(deletions)
    return img[1:-1, 1:-1].astype(bool)


def test_empty_mask_is_all_zeros() -> None:
    assert crack_stats(_canvas(8, 9)) == CrackStats(0, 0.0, 0, 0, 0.0, ())


def test_horizontal_one_pixel_line_of_length_10() -> None:
    mask = _canvas(5, 20)
    mask[2, 4:14] = True
    stats = crack_stats(mask)
    assert stats.crack_pixels == 10
    assert stats.coverage_pct == pytest.approx(100 * 10 / 100)
    assert stats.components == 1
    assert stats.skeleton_px == 10  # a 1-px line is its own skeleton: ends have one neighbour, kept
    assert stats.max_width_px == 1.0  # D = 1 (4-neighbours are background), 2 * 1 - 1
    assert stats.boxes == (CrackBox(x=4, y=2, w=10, h=1, pixels=10),)


def test_diagonal_one_pixel_line_counts_pixels_not_euclidean_length() -> None:
    mask = _canvas(12, 12)
    idx = np.arange(1, 11)
    mask[idx, idx] = True
    stats = crack_stats(mask)
    assert stats.skeleton_px == 10  # documented: one per pixel, not 10 * sqrt(2)
    assert stats.max_width_px == 1.0
    assert stats.components == 1  # diagonal steps connect under 8-connectivity


def test_five_pixel_wide_bar() -> None:
    mask = _canvas(11, 30)
    mask[3:8, 5:25] = True  # rows 3..7, columns 5..24
    stats = crack_stats(mask)
    assert stats.crack_pixels == 100
    assert stats.coverage_pct == pytest.approx(100 * 100 / 330, rel=1e-6)
    # Centre row 5 is 3 pixel centres from rows 2 and 8 (background): D = 3, width 2 * 3 - 1.
    assert stats.max_width_px == 5.0
    # Zhang-Suen by hand: iteration 1 strips the south row, east column and NW corner (step 1), then
    # the north row and west column (step 2), leaving rows 4..6 x columns 6..23; iteration 2 does the
    # same to rows 5 x columns 7..22 and removes (5, 22) as a corner. Ends with one neighbour stay.
    expected = _canvas(11, 30)
    expected[5, 7:22] = True
    assert np.array_equal(skeletonize(mask), expected)
    assert stats.skeleton_px == 15
    assert stats.boxes == (CrackBox(x=5, y=3, w=20, h=5, pixels=100),)


def test_out_of_frame_counts_as_background_for_width() -> None:
    assert crack_stats(np.ones((5, 20), bool)).max_width_px == 5.0  # not infinite


def test_two_components_sorted_by_area_and_capped() -> None:
    mask = _canvas(10, 10)
    mask[1, 1:4] = True  # 3 px, found first in raster order
    mask[5:7, 4:7] = True  # 6 px
    stats = crack_stats(mask)
    assert stats.components == 2
    assert stats.crack_pixels == 9
    assert stats.boxes == (CrackBox(4, 5, 3, 2, 6), CrackBox(1, 1, 3, 1, 3))
    capped = crack_stats(mask, max_boxes=1)
    assert capped.components == 2
    assert capped.boxes == (CrackBox(4, 5, 3, 2, 6),)


def test_equal_areas_keep_raster_order() -> None:
    mask = _canvas(6, 6)
    mask[4, 0:2] = True
    mask[0, 3:5] = True
    assert [b.y for b in crack_stats(mask).boxes] == [0, 4]


def test_floats_survive_a_float32_field() -> None:
    mask = _canvas(7, 13)
    mask[1:4, 2:9] = True
    stats = crack_stats(mask)
    assert float(np.float32(stats.coverage_pct)) == stats.coverage_pct
    assert float(np.float32(stats.max_width_px)) == stats.max_width_px


@pytest.mark.parametrize("seed", range(6))
def test_skeleton_matches_textbook_zhang_suen(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((24, 31)) < 0.55
    mask[1:-1, 1:-1] |= mask[:-2, 1:-1] & mask[2:, 1:-1]  # thicken into blobs with holes
    assert np.array_equal(skeletonize(mask), _zhang_suen_reference(mask))


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((2, 4, 4), bool)])
def test_rejects_non_bool_or_non_2d(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2-D bool"):
        crack_stats(bad)


def _whole_frame_width_and_skeleton(mask: np.ndarray) -> tuple[float, int]:
    """Max width and skeleton length as the previous ``crack_stats`` computed them, over the whole frame.

    OpenCV's exact distance transform rounds ``sqrt(D^2)`` differently by image size (one float32 step),
    so widths are compared within that.
    """
    padded = np.pad(mask.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return float(np.float32(2.0) * dist.max() - np.float32(1.0)), int(np.count_nonzero(skeletonize(mask)))


def _crack_masks() -> list[np.ndarray]:
    """Synthetic crack masks (1-5.5 px wide walks, branching), some with speckle noise around them."""
    synth = CrackSynth(width=160, height=128, seed=3)
    rng = np.random.default_rng(0)
    masks = []
    for index in range(8):
        mask = synth.render(index)[1]
        if index % 2:
            mask |= rng.random(mask.shape) < 0.01  # isolated specks: many tiny components
        masks.append(mask)
    return masks


@pytest.mark.parametrize("index", range(8))
def test_width_and_skeleton_inside_crack_boxes_equal_the_whole_frame_computation(index: int) -> None:
    mask = _crack_masks()[index]
    stats = crack_stats(mask)
    width, skeleton = _whole_frame_width_and_skeleton(mask)
    assert stats.skeleton_px == skeleton
    assert stats.max_width_px == pytest.approx(width, rel=1e-6)


def test_the_widest_component_need_not_be_the_largest() -> None:
    mask = _canvas(40, 60)
    mask[2, 0:60] = True  # 60 px long, 1 px wide, touching the frame's left and right edges
    mask[20:27, 30:37] = True  # 49 px, 7 px wide
    mask[38:40, 0:2] = True  # in the corner: out of frame counts as background
    assert crack_stats(mask).max_width_px == 7.0 == _whole_frame_width_and_skeleton(mask)[0]


@pytest.mark.parametrize("name", ["mask_raw.bin", "mask_png.bin", "mask_packbits_zlib.bin"])
def test_golden_messages_keep_the_statistics_they_were_made_with(name: str) -> None:
    message = MaskMessage.from_bytes((GOLDEN / name).read_bytes())
    assert message.mask is not None
    assert crack_stats(message.mask) == message.stats


def _drawn_crack(width: int, angle_deg: float, length: int = 160) -> np.ndarray:
    """A straight crack ``length`` px long and ``width`` px wide, drawn through the centre at ``angle_deg``."""
    mask = np.zeros((256, 256), np.uint8)
    half = length / 2 * np.array([np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))])
    start, end = (np.round(128 + sign * half).astype(int) for sign in (-1, 1))
    cv2.line(mask, (int(start[0]), int(start[1])), (int(end[0]), int(end[1])), 1, width)
    return mask.astype(bool)


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 135])
@pytest.mark.parametrize("width", [1, 3, 7])
def test_fast_statistics_of_a_drawn_crack_stay_within_the_stated_bounds(width: int, angle: int) -> None:
    mask = _drawn_crack(width, angle)
    exact, fast = crack_stats(mask), crack_stats(mask, mode="fast")
    # Half the boundary: a w-wide crack reads up to 2w + 2 px longer than its skeleton, a 1-px one 1 px shorter.
    assert -1 <= fast.skeleton_px - exact.skeleton_px <= 2 * width + 2
    assert fast.max_width_px == pytest.approx(exact.max_width_px, rel=0.03)  # 5x5 chamfer: within 2 % of D
    assert (fast.crack_pixels, fast.coverage_pct, fast.components, fast.boxes) == (
        exact.crack_pixels, exact.coverage_pct, exact.components, exact.boxes,
    )  # fmt: skip


def test_fast_length_of_a_bar_is_half_its_boundary() -> None:
    mask = _canvas(11, 30)
    mask[3:8, 5:25] = True  # 20 x 5: 2 * 19 + 2 * 4 boundary pixels
    stats = crack_stats(mask, mode="fast")
    assert stats.skeleton_px == 23 and stats.max_width_px == 5.0  # exact: 15 and 5 (test_five_pixel_wide_bar)


@pytest.mark.parametrize("index", range(8))
def test_fast_statistics_of_crack_masks_keep_the_error_measured_on_real_masks(index: int) -> None:
    mask = _crack_masks()[index]
    exact, fast = crack_stats(mask), crack_stats(mask, mode="fast")
    # Stated in crackseg.edge.runtime.stats: at most 21.0 % (length) and 2.0 % (width) on the bundled model's masks.
    assert fast.skeleton_px == pytest.approx(exact.skeleton_px, rel=0.25)
    assert fast.max_width_px == pytest.approx(exact.max_width_px, rel=0.025)
    assert (fast.crack_pixels, fast.components, fast.boxes) == (exact.crack_pixels, exact.components, exact.boxes)


def test_an_empty_mask_is_all_zeros_in_fast_mode_too() -> None:
    assert crack_stats(_canvas(8, 9), mode="fast") == CrackStats()


def test_an_unknown_statistics_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="statistics mode must be one of exact, fast, got 'approx'"):
        crack_stats(_canvas(4, 4), mode="approx")  # type: ignore[arg-type]
