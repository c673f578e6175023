"""Calibration data: representative crack frames cut from training images, cached with a content hash.

INT8 ranges are only as good as the frames they are measured on, so the set is drawn from the training
images (never the images an accuracy figure is reported on) at the deployment input size: random crops,
reflect-padded at the bottom and right where an image is smaller (as the runtime pads), every image used
equally often (to within one crop). The draw depends only on the seed, so a rebuild yields identical
crops, and :attr:`CalibrationSet.sha256` (SHA-256 over the recipe and the crops) is what an engine
manifest records as its calibration hash.

Cache files are ``.npz`` archives (uint8 RGB crops, the recipe as JSON, the hash) named after a digest of
the recipe, which includes a digest of the source files' bytes: changing an image, the size, the count or
the seed builds a new set instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.artifact.size import DEFAULT_INPUT_SIZE, Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.preprocess import to_network_input
from crackseg.edge.evaluation.dataset import IMAGE_SUFFIXES, CrackDataset

__all__ = [
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "RECIPE_VERSION",
    "CalibrationDataError",
    "CalibrationSet",
    "build_calibration_set",
    "calibration_feeds",
    "default_cache_dir",
    "find_images",
    "load_or_build",
]

DEFAULT_SAMPLES = 256
DEFAULT_SEED = 0
RECIPE_VERSION = 1
"""Bumped whenever the sampling procedure changes, so old cache files are not mistaken for new ones."""


class CalibrationDataError(CracksegError, ValueError):
    """Calibration images are missing or unreadable, or a cache file does not match its hash."""


@dataclass(frozen=True, eq=False)
class CalibrationSet:
    """Calibration crops and how they were made.

    Attributes:
        crops: ``(N, H, W, 3)`` uint8 RGB.
        recipe: source file names and their digest, crop size, count, seed, recipe version.
        sha256: SHA-256 over the recipe and the crops; identical for identical rebuilds.
    """

    crops: NDArray[np.uint8]
    recipe: Mapping[str, Any]
    sha256: str

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def size(self) -> Size:
        """The crop size."""
        return Size(height=int(self.crops.shape[1]), width=int(self.crops.shape[2]))

    def summary(self) -> dict[str, Any]:
        """What a quantized model records about its calibration data (no file list)."""
        return {
            "calibration_sha256": self.sha256,
            "crop_size": list(self.size),
            "seed": self.recipe["seed"],
            "source_images": len(self.recipe["sources"]),
            "sources_sha256": self.recipe["sources_sha256"],
        }

    def save(self, path: str | Path) -> Path:
        """Writes the set to a compressed ``.npz`` file (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            np.savez_compressed(handle, crops=self.crops, recipe=_canonical(self.recipe), sha256=self.sha256)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CalibrationSet:
        """Reads a set written by :meth:`save`; raises ``CalibrationDataError`` if its hash does not match."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                crops, recipe, stored = archive["crops"], json.loads(str(archive["recipe"])), str(archive["sha256"])
        except (OSError, KeyError, ValueError) as exc:
            raise CalibrationDataError(f"{path} is not a calibration cache file: {exc}") from exc
        if _content_hash(crops, recipe) != stored:
            raise CalibrationDataError(f"{path} does not match its recorded hash (modified or corrupt): delete it")
        return cls(crops, recipe, stored)


def find_images(root: str | Path, split: str | Path | None = None) -> list[Path]:
    """The images to calibrate on: a split of a dataset (``root/images`` and ``root/masks``), or every
    image file directly inside a plain folder of frames (masks are not needed).

    Raises:
        CalibrationDataError: the folder is missing or holds no image, or a split is asked of a plain folder.
    """
    root = Path(root)
    if (root / "images").is_dir():
        dataset = CrackDataset(root, split)
        return [dataset.image_path(index) for index in range(len(dataset))]
    if not root.is_dir():
        raise CalibrationDataError(f"calibration image folder not found: {root}")
    if split is not None:
        raise CalibrationDataError(f"{root} has no images/ folder, so it has no split {str(split)!r}")
    images = sorted(
        path
        for path in root.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        kinds = ", ".join(IMAGE_SUFFIXES)
        raise CalibrationDataError(
            f"no calibration images in {root}: expected {kinds} files, or a dataset folder with images/ and masks/"
        )
    return images


def build_calibration_set(
    images: Sequence[str | Path],
    size: Size = DEFAULT_INPUT_SIZE,
    count: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
) -> CalibrationSet:
    """Cuts ``count`` random ``size`` crops from ``images``, deterministically for a given ``seed``.

    Args:
        images: training image files (any order: they are sorted, so the draw does not depend on listing order).
        size: the crop size, the deployment input size.
        count: number of crops.
        seed: seed of the draw.
    """
    paths = sorted(Path(image) for image in images)
    if not paths:
        raise CalibrationDataError("no calibration images given")
    height, width = size
    if height < 1 or width < 1 or count < 1:
        raise ValueError(f"size and count must be positive, got size {Size(height, width)} and count {count}")
    rng = np.random.default_rng(seed)
    rounds = math.ceil(count / len(paths))
    order = np.concatenate([rng.permutation(len(paths)) for _ in range(rounds)])[:count]
    offsets = rng.random((count, 2))  # fractions of the free range, so the draw needs no image size
    crops = np.empty((count, height, width, 3), np.uint8)
    for index in tqdm(np.unique(order), desc="calibration crops", unit="img", disable=not progress, leave=False):
        image = _pad_to(_read_rgb(paths[index]), height, width)
        free_y, free_x = image.shape[0] - height + 1, image.shape[1] - width + 1
        for sample in np.flatnonzero(order == index):
            y, x = int(offsets[sample, 0] * free_y), int(offsets[sample, 1] * free_x)
            crops[sample] = image[y : y + height, x : x + width]
    recipe = _recipe(paths, size, count, seed)
    return CalibrationSet(crops, recipe, _content_hash(crops, recipe))


def load_or_build(
    images: Sequence[str | Path],
    cache_dir: str | Path,
    size: Size = DEFAULT_INPUT_SIZE,
    count: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
) -> tuple[CalibrationSet, Path]:
    """The calibration set for this recipe from ``cache_dir``, built and saved there if absent.

    Returns:
        the set and its cache file.
    """
    paths = sorted(Path(image) for image in images)
    if not paths:
        raise CalibrationDataError("no calibration images given")
    recipe_digest = hashlib.sha256(_canonical(_recipe(paths, size, count, seed)).encode()).hexdigest()
    cache = Path(cache_dir) / f"calib-{recipe_digest[:16]}.npz"
    if cache.is_file():
        return CalibrationSet.load(cache), cache
    calibration = build_calibration_set(paths, size, count, seed, progress)
    return calibration, calibration.save(cache)


def calibration_feeds(calibration: CalibrationSet, spec: ModelSpec) -> Iterator[dict[str, NDArray[np.float32]]]:
    """One ``{"image": 1x3xHxW float32}`` feed per crop, normalized as the model spec says."""
    height, width = calibration.size
    if height % spec.size_multiple or width % spec.size_multiple:
        raise CalibrationDataError(
            f"calibration crops are {Size(height, width)}, not a multiple of the model's {spec.size_multiple}"
        )
    for crop in calibration.crops:
        yield {"image": to_network_input(crop, spec)}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/crackseg/calib`` (``~/.cache/crackseg/calib`` when unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crackseg" / "calib"


def _read_rgb(path: Path) -> NDArray[np.uint8]:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if image is None:
        raise CalibrationDataError(f"cannot decode calibration image {path}")
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _pad_to(image: NDArray[np.uint8], height: int, width: int) -> NDArray[np.uint8]:
    """Reflect-pads at the bottom and right up to at least ``height x width``."""
    pad_h, pad_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if pad_h == pad_w == 0:
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


def _recipe(paths: Sequence[Path], size: Size, count: int, seed: int) -> dict[str, Any]:
    """Everything the crops depend on. File names are relative to the images' common folder and the
    files are identified by content, so moving a dataset keeps its hash and editing an image changes it.
    """
    resolved = [path.resolve() for path in paths]
    root = Path(os.path.commonpath([path.parent for path in resolved]))
    names = [path.relative_to(root).as_posix() for path in resolved]
    digest = hashlib.sha256()
    for name, path in zip(names, resolved, strict=True):
        digest.update(name.encode() + b"\0" + bytes.fromhex(sha256_file(path)))
    return {
        "version": RECIPE_VERSION,
        "sources": names,
        "sources_sha256": digest.hexdigest(),
        "size": [int(size[0]), int(size[1])],  # (height, width): array order, as recipes have always stored it
        "count": int(count),
        "seed": int(seed),
    }


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _content_hash(crops: NDArray[np.uint8], recipe: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(_canonical(recipe).encode())
    digest.update(np.asarray(crops.shape, np.int64).tobytes())
    digest.update(np.ascontiguousarray(crops).tobytes())
    return digest.hexdigest()
