"""Multi-source training data: the --data syntax, sampling by weight, label dilation, field augmentation."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from crackseg.edge.evaluation.dataset import CrackDataset, DatasetError, resolve_split
from crackseg.train.data.augment import Compose, TrainAugment
from crackseg.train.data.camera import CameraEffects
from crackseg.train.data.regions import WithRegions
from crackseg.train.data.sources import DataSource, LabelDilation, parse_source

# --- the --data syntax ------------------------------------------------------------------------------


def test_a_source_names_its_splits_and_options(tmp_path: Path) -> None:
    source = parse_source(f"{tmp_path}:train:val:weight=2.5:dilate=1:tol=2")
    assert source == DataSource(tmp_path, "train", "val", weight=2.5, dilate_px=1, val_tolerance_px=2)
    assert source.name == tmp_path.name


def test_a_source_may_name_a_loss_band_and_hard_negative_regions(tmp_path: Path) -> None:
    (tmp_path / "planking").mkdir()
    source = parse_source(f"{tmp_path}:train:val:ignore=2:negatives=planking")
    assert (source.ignore_px, source.negatives) == (2, "planking")


def test_splits_left_out_fall_back_to_the_defaults(tmp_path: Path) -> None:
    assert parse_source(str(tmp_path), "deepcrack_train", "deepcrack_val") == DataSource(
        tmp_path, "deepcrack_train", "deepcrack_val"
    )
    assert parse_source(f"{tmp_path}:a", "train", "val") == DataSource(tmp_path, "a", "val")


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":train", "names no validation split"),
        (":a:b:c", "expected ROOT[:TRAIN[:VAL]], got 3 splits"),
        (":a:b:weigth=2", "unknown option 'weigth'"),
        (":a:b:weight=x", "weight must be a number, not 'x'"),
        (":a:b:weight=-1", "weight must be 0 (validation only) or positive"),
        (":a:b:dilate=1.5", "dilate must be a whole number"),
        (":a:b:dilate=9", "dilate must be 0-5 px"),
        (":a:b:tol=3", "tol must be one of (0, 1, 2, 5)"),
        (":a:b:ignore=6", "ignore must be 0-5 px"),
        (":a:b:negatives=planking", "hard-negative folder not found"),
        (":a:b:negatives=", "hard-negative folder not found"),
    ],
)
def test_a_bad_source_is_refused_naming_the_problem(tmp_path: Path, suffix: str, message: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(message)):
        parse_source(f"{tmp_path}{suffix}")


def test_a_missing_dataset_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset folder not found"):
        parse_source(f"{tmp_path / 'nope'}:train:val")


# --- sampling by weight -----------------------------------------------------------------------------


def test_sources_are_drawn_in_proportion_to_their_weights() -> None:
    from crackseg.train.data.torch_dataset import WeightedSourceSampler

    # sizes deliberately unlike the weights: the share follows the weight, not the size
    sampler = WeightedSourceSampler([10, 300, 40], [1.0, 1.0, 2.0], seed=0, samples_per_rank=40_000)
    indices = np.asarray(list(sampler))
    counts = [np.sum(indices < 10), np.sum((indices >= 10) & (indices < 310)), np.sum(indices >= 310)]
    np.testing.assert_allclose(np.asarray(counts) / len(indices), [0.25, 0.25, 0.5], atol=0.01)
    assert indices.min() >= 0 and indices.max() < 350


def test_a_source_of_weight_zero_is_never_drawn() -> None:
    from crackseg.train.data.torch_dataset import WeightedSourceSampler

    indices = list(WeightedSourceSampler([5, 8], [1.0, 0.0], seed=2, samples_per_rank=50))
    assert len(indices) == 50 and max(indices) < 5


def test_within_a_source_every_image_is_seen_before_any_repeats() -> None:
    from crackseg.train.data.torch_dataset import WeightedSourceSampler

    sampler = WeightedSourceSampler([7], [1.0], seed=3, samples_per_rank=14)
    indices = list(sampler)
    assert sorted(indices[:7]) == list(range(7)) and sorted(indices[7:]) == list(range(7))


def test_one_source_gives_a_permutation_that_changes_with_the_epoch() -> None:
    from crackseg.train.data.torch_dataset import WeightedSourceSampler

    sampler = WeightedSourceSampler([50], [1.0], seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert sorted(first) == list(range(50)) and list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first  # a function of (seed, epoch)


def test_distributed_ranks_split_one_draw_without_overlap() -> None:
    from crackseg.train.data.torch_dataset import WeightedSourceSampler

    ranks = [WeightedSourceSampler([20, 20], [1.0, 3.0], seed=1, rank=r, world_size=2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 20
    whole = ranks[0].epoch_indices()
    assert sorted([*ranks[0], *ranks[1]]) == sorted(whole.tolist())


# --- line-wise labels ------------------------------------------------------------------------------


def test_dilation_widens_a_one_pixel_line_to_three_pixels() -> None:
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 2:7] = True  # a 5-px horizontal centreline
    image = np.zeros((9, 9, 3), dtype=np.uint8)
    _, grown = LabelDilation(1)(image, mask, np.random.default_rng(0))
    # a radius-1 disc is the 3x3 cross: 3 rows of 5, plus one pixel past each end
    assert grown.sum() == 3 * 5 + 2
    assert grown[3:6, 2:7].all() and grown[4, 1] and grown[4, 7] and not grown[3, 1]
    assert LabelDilation(0)(image, mask, np.random.default_rng(0))[1] is mask


# --- hard-negative regions ------------------------------------------------------------------------


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def _with_planking(root: Path) -> WithRegions:
    rng = np.random.default_rng(1)
    for stem in ("a", "b"):
        _write_png(root / "images" / "train" / f"{stem}.png", rng.integers(0, 256, (24, 30, 3), dtype=np.uint8))
        cracks = np.zeros((24, 30), dtype=np.uint8)
        cracks[12, 3:27] = 255
        _write_png(root / "masks" / "train" / f"{stem}.png", cracks)
    joint = np.zeros((24, 30), dtype=np.uint8)
    joint[2:22, 20] = 255
    _write_png(root / "planking" / "train" / "a.png", joint)  # b has no region file
    return WithRegions(CrackDataset(root, "train"), root / "planking")


def test_regions_come_as_a_second_label_plane_and_missing_ones_are_empty(tmp_path: Path) -> None:
    samples = _with_planking(tmp_path)
    _, planes = samples.load(0)
    assert planes.shape == (24, 30, 2) and planes[12, 3:27, 0].all() and planes[2:22, 20, 1].all()
    assert planes[..., 1].sum() == 20
    assert not samples.load(1)[1][..., 1].any()


def test_a_region_file_that_is_not_a_binary_mask_is_refused_naming_it(tmp_path: Path) -> None:
    samples = _with_planking(tmp_path)
    _write_png(tmp_path / "planking" / "train" / "a.png", np.full((24, 30), 204, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"a\.png is not binary"):
        samples.load(0)


def test_regions_follow_the_crack_labels_through_augmentation_and_dilation(tmp_path: Path) -> None:
    image, planes = _with_planking(tmp_path).load(0)
    augment = Compose((LabelDilation(1), TrainAugment(crop_size=16, scale_range=(0.5, 2.0))))
    _, warped = augment(image, planes, np.random.default_rng(7))
    # the same draws applied to each plane alone: regions are moved, never dilated
    alone = TrainAugment(crop_size=16, scale_range=(0.5, 2.0))
    _, cracks = alone(
        image, LabelDilation(1)(image, planes[..., 0], np.random.default_rng(0))[1], np.random.default_rng(7)
    )
    _, region = alone(image, planes[..., 1], np.random.default_rng(7))
    np.testing.assert_array_equal(warped[..., 0], cracks)
    np.testing.assert_array_equal(warped[..., 1], region)


def test_a_training_sample_weighs_its_hard_negatives(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from crackseg.train.data.pixel_weights import PixelWeights
    from crackseg.train.data.torch_dataset import AugmentedCrackDataset

    no_change = TrainAugment(crop_size=(24, 30), max_rotation_deg=0.0, flip=False, jitter=0.0)
    view = AugmentedCrackDataset(
        _with_planking(tmp_path), no_change, 0, (0.0,) * 3, (1.0,) * 3, 0, PixelWeights(0, 4.0)
    )
    _, mask, weight = view[0]
    assert weight[0, 2:22, 20].tolist() == [4.0] * 10 + [1.0] + [4.0] * 9  # the crack pixel at row 12 stays 1
    assert mask[0, 12, 20] == 1.0 and weight.sum().item() == 24 * 30 + 3 * 19


# --- field augmentation ----------------------------------------------------------------------------


def _scene(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    image = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    cv2.line(mask.view(np.uint8), (5, 10), (90, 80), 1, 1)
    return image, mask


def test_field_augmentation_is_a_function_of_the_rng_state() -> None:
    augment = Compose((LabelDilation(1), TrainAugment(crop_size=48, scale_range=(0.5, 2.0)), CameraEffects()))
    image, mask = _scene()
    first = augment(image, mask, np.random.default_rng([0, 3, 7]))
    again = augment(image, mask, np.random.default_rng([0, 3, 7]))
    other = augment(image, mask, np.random.default_rng([0, 4, 7]))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_shrinking_keeps_a_hairline_in_the_mask() -> None:
    image, mask = _scene()
    augment = TrainAugment(crop_size=48, max_rotation_deg=0.0, flip=False, jitter=0.0, scale_range=(0.5, 0.5))
    _, crop = augment(image, mask, np.random.default_rng(0))
    # the 1-px line halved is still one connected line across the 48-px crop (nearest neighbour breaks it up)
    count, _ = cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)
    assert crop.any() and count - 1 == 1
    assert crop.sum() >= 40


def test_camera_effects_leave_the_mask_alone_and_change_the_image() -> None:
    image, mask = _scene()
    always = CameraEffects(1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    degraded, same_mask = always(image, mask, np.random.default_rng(0))
    assert same_mask is mask
    assert degraded.shape == image.shape and degraded.dtype == np.uint8
    assert np.abs(degraded.astype(int) - image.astype(int)).mean() > 2
    never = CameraEffects(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(never(image, mask, np.random.default_rng(0))[0], image)


def test_invalid_camera_probabilities_and_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="p_noise must be a probability"):
        CameraEffects(p_noise=1.5)
    with pytest.raises(ValueError, match="scale_range"):
        TrainAugment(scale_range=(2.0, 1.0))


def test_the_marble_splits_are_read_and_no_slab_photo_is_in_two_splits(datasets_root: Path) -> None:
    """The seventh domain: 191 / 30 / 25 tiles, split by slab photo (the stem after ``_<x>_<y>_``)."""
    source = parse_source(f"{datasets_root / 'Marble'}:train:val")
    train, val = source.train_set(), source.val_set()
    test = CrackDataset(source.root, resolve_split("test"))
    assert (len(train), len(val), len(test)) == (191, 30, 25)
    photos = [{stem.split("_", 3)[3] for stem in split.stems} for split in (train, val, test)]
    assert not (photos[0] & photos[1] or photos[0] & photos[2] or photos[1] & photos[2])
    image, mask = test.load(0)
    assert image.shape[:2] == mask.shape == (256, 256) and mask.any()
