"""Training data: dataset layouts and their validation errors, committed splits, augmentation, input prep."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crackseg.edge.backends.preprocess import normalize
from crackseg.edge.evaluation.dataset import CrackDataset, DatasetError, read_split_file, split_file
from crackseg.train.data import TrainAugment

# A 6x8 mask with a diagonal-ish crack, stored as 0/255 like the public datasets.
MASK = np.zeros((6, 8), dtype=bool)
MASK[[1, 2, 3, 4], [2, 3, 4, 5]] = True


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _pair(root: Path, stem: str, value: int = 100, mask: np.ndarray = MASK, image_suffix: str = ".png") -> None:
    """Write ``root/images/<stem>`` in BGR ``(value, value + 1, value + 2)`` and its 0/255 ``root/masks/<stem>.png``."""
    image = np.zeros((*mask.shape, 3), dtype=np.uint8) + np.array([value, value + 1, value + 2], dtype=np.uint8)
    _write(root / "images" / f"{stem}{image_suffix}", image)
    _write(root / "masks" / f"{stem}.png", mask.astype(np.uint8) * 255)


# --- layouts -----------------------------------------------------------------------------------------


def test_flat_layout_loads_rgb_image_and_bool_mask(tmp_path: Path) -> None:
    _pair(tmp_path, "001", value=10)
    _pair(tmp_path, "002", value=20)
    data = CrackDataset(tmp_path)
    assert data.stems == ["001", "002"]
    assert len(data) == 2
    assert data.image_path(1) == tmp_path / "images" / "002.png"
    image, mask = data.load(0)
    assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
    assert image[0, 0].tolist() == [12, 11, 10]  # written as BGR (10, 11, 12), read back as RGB
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, MASK)


def test_zero_one_mask_marks_crack_with_one(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "masks" / "a.png", MASK.astype(np.uint8))
    np.testing.assert_array_equal(CrackDataset(tmp_path).load(0)[1], MASK)


def test_split_subfolders_keep_equal_stems_apart(tmp_path: Path) -> None:
    _pair(tmp_path, "train/x", value=10)
    _pair(tmp_path, "test/x", value=200)
    train, test = CrackDataset(tmp_path, "train"), CrackDataset(tmp_path, "test")
    assert train.stems == ["train/x"] and test.stems == ["test/x"]
    assert train.load(0)[0][0, 0, 2] == 10
    assert test.load(0)[0][0, 0, 2] == 200


def test_split_file_selects_its_entries_in_order(tmp_path: Path) -> None:
    for stem, value in [("train/a", 1), ("train/b", 2), ("test/a", 3)]:
        _pair(tmp_path / "data", stem, value=value)
    listing = tmp_path / "my_split.txt"
    listing.write_text("# picked by hand\n\ntest/a\ntrain/b   # trailing comment\n")
    data = CrackDataset(tmp_path / "data", listing)
    assert data.stems == ["test/a", "train/b"]
    assert [data.load(i)[0][0, 0, 2] for i in range(2)] == [3, 2]


def test_exclude_file_and_argument_both_apply(tmp_path: Path) -> None:
    for stem in ("001", "002", "003"):
        _pair(tmp_path, stem)
    (tmp_path / "exclude.txt").write_text("002  # mask does not match\n")
    assert CrackDataset(tmp_path, exclude=["003"]).stems == ["001"]


def test_from_folders_pairs_by_stem(tmp_path: Path) -> None:
    images, masks = tmp_path / "photos", tmp_path / "labels"
    _write(images / "b.jpg", np.full((6, 8, 3), 90, np.uint8))
    _write(images / "a.png", np.full((6, 8, 3), 90, np.uint8))
    (images / "._a.jpg").write_bytes(b"macOS resource fork, not an image")
    (images / "notes.txt").write_text("not an image")
    for stem in ("a", "b", "orphan"):
        _write(masks / f"{stem}.png", MASK.astype(np.uint8) * 255)
    data = CrackDataset.from_folders(images, masks)
    assert data.stems == ["a", "b"]
    assert data.mask_path(1) == masks / "b.png"
    np.testing.assert_array_equal(data.load(1)[1], MASK)


# --- validation errors name the file ------------------------------------------------------------------


def test_missing_mask_is_found_when_the_dataset_is_built(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "images" / "b.jpg", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"missing mask for image .*b\.jpg"):
        CrackDataset(tmp_path)


def test_two_images_with_one_stem_are_ambiguous(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "images" / "a.jpg", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"ambiguous image .*a\.jpg.*a\.png"):
        CrackDataset(tmp_path)


def test_size_mismatch_names_image_and_mask(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "masks" / "a.png", np.zeros((6, 9), np.uint8))
    data = CrackDataset(tmp_path)
    with pytest.raises(DatasetError, match=r"size mismatch: image .*a\.png is 8x6 but mask .*a\.png is 9x6"):
        data.load(0)


def test_non_binary_mask_names_mask_and_values(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "masks" / "a.png", np.array([[0, 1, 128, 255]] * 6, np.uint8).repeat(2, axis=1))
    with pytest.raises(DatasetError, match=r"mask .*masks/a\.png is not binary: values 0, 1, 128, 255"):
        CrackDataset(tmp_path).load(0)


def test_sixteen_bit_mask_is_judged_by_its_stored_values(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    _write(tmp_path / "masks" / "a.png", MASK.astype(np.uint16))  # 0/1: crack where 1
    _write(tmp_path / "masks" / "b.png", MASK.astype(np.uint16) * 65535)  # would read as 0/255 if rescaled
    data = CrackDataset(tmp_path)
    np.testing.assert_array_equal(data.load(0)[1], MASK)
    with pytest.raises(DatasetError, match=r"mask .*b\.png is not binary: values 0, 65535"):
        data.load(1)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 definitely not a jpeg"], ids=["empty", "garbage"])
@pytest.mark.parametrize("which", ["images/a.png", "masks/a.png"])
def test_unreadable_file_is_named(tmp_path: Path, which: str, content: bytes) -> None:
    _pair(tmp_path, "a")
    (tmp_path / which).write_bytes(content)
    with pytest.raises(DatasetError, match=rf"cannot decode .*{which}"):
        CrackDataset(tmp_path).load(0)


def test_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match=rf"no images in {tmp_path / 'images'}$"):
        CrackDataset(tmp_path)


def test_flat_read_of_split_layout_hints_at_split(tmp_path: Path) -> None:
    _pair(tmp_path, "train/a")
    _pair(tmp_path, "test/a")
    with pytest.raises(DatasetError, match="split subfolders test, train: pass split="):
        CrackDataset(tmp_path)


def test_unknown_split_folder_lists_the_existing_ones(tmp_path: Path) -> None:
    _pair(tmp_path, "train/a")
    with pytest.raises(DatasetError, match=r"no split folder .*images/val \(subfolders there: train\)"):
        CrackDataset(tmp_path, "val")


def test_split_entry_without_image_is_named(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    listing = tmp_path / "split.txt"
    listing.write_text("a\nb\n")
    with pytest.raises(DatasetError, match=r"no image for stem 'b': no b\.\{jpg,.*\} in .*images"):
        CrackDataset(tmp_path, listing)


# --- skip mode -------------------------------------------------------------------------------------------


def test_skip_mode_drops_an_unpaired_image_with_a_warning(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    _write(tmp_path / "images" / "b.jpg", np.zeros((6, 8, 3), np.uint8))
    with pytest.warns(UserWarning, match=r"skipping sample: missing mask for image .*b\.jpg"):
        data = CrackDataset(tmp_path, on_error="skip")
    assert data.stems == ["a"]
    assert len(data.skipped) == 1


def test_validate_raises_naming_every_bad_file(tmp_path: Path) -> None:
    for stem in ("a", "b", "c"):
        _pair(tmp_path, stem)
    _write(tmp_path / "masks" / "a.png", np.full((6, 8), 7, np.uint8))
    (tmp_path / "images" / "c.png").write_bytes(b"broken")
    data = CrackDataset(tmp_path)
    with pytest.raises(DatasetError) as info:
        data.validate()
    assert "masks/a.png is not binary" in str(info.value)
    assert "images/c.png" in str(info.value)
    assert len(data) == 3  # raise mode never drops samples


def test_validate_in_skip_mode_drops_bad_samples(tmp_path: Path) -> None:
    for stem in ("a", "b", "c"):
        _pair(tmp_path, stem)
    _write(tmp_path / "masks" / "b.png", np.zeros((3, 3), np.uint8))
    data = CrackDataset(tmp_path, on_error="skip")
    with pytest.raises(DatasetError, match="size mismatch"):
        data.load(1)  # load always raises: its index was already promised
    with pytest.warns(UserWarning, match=r"skipping sample: size mismatch: image .*b\.png"):
        data.validate()
    assert data.stems == ["a", "c"]
    assert data.load(1)[1].shape == (6, 8)


def test_skip_mode_with_nothing_left_is_an_error(tmp_path: Path) -> None:
    _pair(tmp_path, "a")
    (tmp_path / "masks" / "a.png").write_bytes(b"broken")
    data = CrackDataset(tmp_path, on_error="skip")
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match=r"no usable samples in .*images \(1 skipped\)"):
        data.validate()


# --- split files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\nb\na\n", r":3: stem 'a' is listed twice"),
        ("../a\n", r":1: '\.\./a' must be a relative path"),
        ("/data/a\n", r":1: '/data/a' must be a relative path"),
        ("# only a comment\n\n", r"lists no stems"),
    ],
)
def test_bad_split_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    listing = tmp_path / "split.txt"
    listing.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_split_file(listing)


def test_missing_split_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"cannot read split file .*nope\.txt"):
        CrackDataset(tmp_path, tmp_path / "nope.txt")


def test_unknown_bundled_split_suggests_the_closest() -> None:
    with pytest.raises(DatasetError, match="did you mean 'deepcrack_val'"):
        split_file("deepcrack_vall")


def test_bundled_splits_have_the_documented_sizes() -> None:
    stems = {name: read_split_file(split_file(name)) for name in ("deepcrack_train", "deepcrack_val")}
    assert (len(stems["deepcrack_train"]), len(stems["deepcrack_val"])) == (270, 30)
    assert not set(stems["deepcrack_train"]) & set(stems["deepcrack_val"])
    assert all(stem.startswith("train/") for stem in stems["deepcrack_train"] + stems["deepcrack_val"])

    cfd = {name: read_split_file(split_file(f"cfd_{name}")) for name in ("train", "val", "test")}
    assert [len(cfd[name]) for name in ("train", "val", "test")] == [64, 7, 46]
    assert cfd["val"] == ["004", "009", "019", "039", "053", "062", "068"]
    assert cfd["test"] == [f"{i:03d}" for i in range(73, 119)]
    union = set(cfd["train"]) | set(cfd["val"]) | set(cfd["test"])
    assert len(union) == 117 and union == {f"{i:03d}" for i in range(1, 119)} - {"042"}


def test_deepcrack_splits_partition_the_real_training_images(datasets_root: Path) -> None:
    root = datasets_root / "DeepCrack"
    train, val = CrackDataset(root, split_file("deepcrack_train")), CrackDataset(root, split_file("deepcrack_val"))
    official = CrackDataset(root, "train")
    assert (len(train), len(val)) == (270, 30)
    assert set(train.stems).isdisjoint(val.stems)
    assert set(train.stems) | set(val.stems) == set(official.stems)
    assert len(official) == 300
    # The seeded draw the file header documents reproduces the committed validation list.
    bare = sorted(stem.removeprefix("train/") for stem in official.stems)
    drawn = sorted(np.random.default_rng(0).choice(bare, 30, replace=False).tolist())
    assert val.stems == [f"train/{stem}" for stem in drawn]
    val.validate()  # 30 real images decode, match in size and have {0, 255} masks


def test_cfd_splits_resolve_and_exclude_042(datasets_root: Path) -> None:
    root = datasets_root / "CFD"
    every = CrackDataset(root)
    assert len(every) == 117 and "042" not in every.stems  # root/exclude.txt applies
    parts = [CrackDataset(root, split_file(f"cfd_{name}")) for name in ("train", "val", "test")]
    assert sorted(stem for part in parts for stem in part.stems) == every.stems
    parts[1].validate()


# --- augmentation -------------------------------------------------------------------------------------------


def _random_pair(seed: int, shape: tuple[int, int] = (40, 50)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8), rng.random(shape) < 0.2


def test_augmentation_is_a_function_of_the_rng_state() -> None:
    image, mask = _random_pair(0)
    augment = TrainAugment(crop_size=24)
    first = augment(image, mask, np.random.default_rng(5))
    again = augment(image, mask, np.random.default_rng(5))
    other = augment(image, mask, np.random.default_rng(6))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert first[0].shape == (24, 24, 3) and first[0].dtype == np.uint8
    assert first[1].shape == (24, 24) and first[1].dtype == bool


def test_without_rotation_the_crop_is_an_exact_window() -> None:
    image, mask = _random_pair(1)
    augment = TrainAugment(crop_size=(16, 20), max_rotation_deg=0.0, flip=False, jitter=0.0)
    for seed in range(5):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        windows = [
            (top, left)
            for top in range(40 - 16 + 1)
            for left in range(50 - 20 + 1)
            if np.array_equal(image[top : top + 16, left : left + 20], out_image)
        ]
        assert len(windows) == 1
        top, left = windows[0]
        np.testing.assert_array_equal(out_mask, mask[top : top + 16, left : left + 20])


def test_flips_give_all_four_mirror_images() -> None:
    image, mask = _random_pair(2, shape=(12, 12))
    augment = TrainAugment(crop_size=12, max_rotation_deg=0.0, flip=True, jitter=0.0)
    variants = {
        "none": (image, mask),
        "lr": (image[:, ::-1], mask[:, ::-1]),
        "ud": (image[::-1], mask[::-1]),
        "both": (image[::-1, ::-1], mask[::-1, ::-1]),
    }
    seen = set()
    for seed in range(40):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        (name,) = [
            k for k, (im, m) in variants.items() if np.array_equal(im, out_image) and np.array_equal(m, out_mask)
        ]
        seen.add(name)
    assert seen == set(variants)


def test_an_image_smaller_than_the_crop_is_reflect_padded() -> None:
    image, mask = _random_pair(3, shape=(5, 6))
    augment = TrainAugment(crop_size=8, max_rotation_deg=0.0, flip=False, jitter=0.0)
    out_image, out_mask = augment(image, mask, np.random.default_rng(0))
    big_image = np.pad(image, ((8, 8), (8, 8), (0, 0)), mode="reflect")  # numpy 'reflect' is cv2 REFLECT_101
    big_mask = np.pad(mask, 8, mode="reflect")
    # The crop places the whole image at some offset (top, left) in [0, 3] x [0, 2] and reflects around it.
    matches = [
        (top, left)
        for top in range(4)
        for left in range(3)
        if np.array_equal(big_image[8 - top : 16 - top, 8 - left : 16 - left], out_image)
    ]
    assert len(matches) == 1
    top, left = matches[0]
    np.testing.assert_array_equal(out_mask, big_mask[8 - top : 16 - top, 8 - left : 16 - left])


def test_rotation_keeps_the_mask_binary_and_aligned_with_the_image() -> None:
    mask = np.zeros((64, 64), dtype=bool)
    mask[30:34, 4:60] = True  # a thick horizontal crack
    mask[10:50, 45:48] = True
    image = np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2)
    augment = TrainAugment(crop_size=48, max_rotation_deg=90.0, flip=True, jitter=0.0)
    for seed in range(10):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        assert out_mask.dtype == bool
        assert set(np.unique(out_mask.view(np.uint8)).tolist()) <= {0, 1}
        # Bilinear and nearest sampling differ only along edges.
        agreement = np.mean((out_image[..., 0] > 127) == out_mask)
        assert agreement > 0.97, (seed, agreement)


def test_rotation_angles_span_zero_to_ninety_degrees() -> None:
    mask = np.zeros((65, 65), dtype=bool)
    mask[32, 8:57] = True  # horizontal line through the centre
    image = np.zeros((65, 65, 3), dtype=np.uint8)
    augment = TrainAugment(crop_size=65, max_rotation_deg=90.0, flip=False, jitter=0.0)
    angles = []
    for seed in range(30):
        ys, xs = np.nonzero(augment(image, mask, np.random.default_rng(seed))[1])
        cov = np.cov(np.stack([xs, ys]).astype(float))
        angles.append(abs(np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))))
    assert max(angles) <= 90.5
    assert min(angles) < 20 and max(angles) > 70


def test_jitter_changes_colours_within_its_bounds_and_never_the_mask() -> None:
    # A constant grey 128 is unchanged by contrast and saturation; brightness b and gamma g in [0.9, 1.1]
    # give 255 * (128 b / 255) ** g, from 255 * (0.9 * 128/255) ** 1.1 = 106.4 to 255 * (1.1 * 128/255) ** 0.9 = 149.5.
    image = np.full((16, 16, 3), 128, dtype=np.uint8)
    mask = np.eye(16, dtype=bool)
    plain = TrainAugment(crop_size=16, jitter=0.0)
    jittered = TrainAugment(crop_size=16, jitter=0.1)
    values = []
    for seed in range(20):
        out_image, out_mask = jittered(image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_mask, plain(image, mask, np.random.default_rng(seed))[1])
        assert np.all(out_image == out_image[0, 0, 0])  # still one grey
        values.append(int(out_image[0, 0, 0]))
    assert min(values) >= 106 and max(values) <= 150
    assert len(set(values)) > 5


@pytest.mark.parametrize("kwargs", [{"crop_size": 0}, {"jitter": 1.0}, {"max_rotation_deg": -1.0}])
def test_invalid_augment_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrainAugment(**kwargs)  # type: ignore[arg-type]


# --- torch views ----------------------------------------------------------------------------------------------


def _tiny_dataset(root: Path, count: int = 4) -> CrackDataset:
    rng = np.random.default_rng(0)
    for i in range(count):
        _write(root / "images" / f"{i}.png", rng.integers(0, 256, (10, 13, 3), dtype=np.uint8))
        _write(root / "masks" / f"{i}.png", (rng.random((10, 13)) < 0.3).astype(np.uint8) * 255)
    return CrackDataset(root)


def test_augmented_items_follow_seed_epoch_and_index(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from crackseg.train.data.torch_dataset import AugmentedCrackDataset

    data = _tiny_dataset(tmp_path)
    augment = TrainAugment(crop_size=8)
    mean, std = (127.5,) * 3, (127.5,) * 3
    view = AugmentedCrackDataset(data, augment, seed=3, mean=mean, std=std)
    view.set_epoch(2)
    image, mask, weight = view[1]
    expected_image, expected_mask = augment(*data.load(1), np.random.default_rng([3, 2, 1]))
    np.testing.assert_array_equal(image.numpy(), normalize(expected_image, mean, std))
    np.testing.assert_array_equal(mask.numpy(), expected_mask[None].astype(np.float32))
    assert image.shape == (3, 8, 8) and mask.shape == (1, 8, 8)
    assert weight.numpy().tolist() == np.ones((1, 8, 8)).tolist()  # no band, no hard negatives
    view.set_epoch(3)
    assert not np.array_equal(view[1][0].numpy(), image.numpy())


def test_worker_processes_see_each_new_epoch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch import Tensor
    from torch.utils.data import DataLoader

    from crackseg.train.data.torch_dataset import AugmentedCrackDataset

    view = AugmentedCrackDataset(_tiny_dataset(tmp_path), TrainAugment(crop_size=8), 0, (127.5,) * 3, (127.5,) * 3)

    def epochs(loader: DataLoader[tuple[Tensor, Tensor, Tensor]]) -> list[Tensor]:
        batches = []
        for epoch in range(2):
            view.set_epoch(epoch)
            batches.append(torch.cat([images for images, _, _ in loader]))
        return batches

    in_process = epochs(DataLoader(view, batch_size=2))
    workers = epochs(DataLoader(view, batch_size=2, num_workers=2, persistent_workers=True))
    assert not torch.equal(in_process[0], in_process[1])
    for ours, theirs in zip(in_process, workers, strict=True):
        assert torch.equal(ours, theirs)
