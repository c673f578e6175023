"""Paired crack images and binary masks, read from the folder layouts the public crack datasets use.

A sample's *stem* is its path relative to the images folder, without suffix, so it is unique even
where a dataset reuses file names across splits (DeepCrack has ten stems in both ``train`` and
``test`` that are different images: they are ``train/11289-1`` and ``test/11289-1`` here).

Layouts (``root`` is one dataset's folder):

- split subfolders (DeepCrack, UAV75): ``root/images/<split>/*.jpg`` and ``root/masks/<split>/*.png``,
  chosen with ``split="train"``.
- flat (CFD): ``root/images/*.jpg`` and ``root/masks/*.png``, chosen with ``split=None``.
- split file: ``split`` is any path ending in ``.txt``; each line is a stem (``073`` selects from
  the flat folders, ``train/11111`` from the ``train`` subfolder). ``#`` starts a comment. The
  committed splits are found by name with :func:`split_file`.
- :meth:`CrackDataset.from_folders`: any pair of image and mask folders, matched by file stem.

``root/exclude.txt`` (split-file format), when present, lists stems never used (CFD's ``042``,
whose mask does not match its image).

Masks are read as 8-bit grey and crack is ``== 255``, as the reference evaluator counts it. A mask
whose values are all in {0, 1} is accepted with 1 as crack; any other value is an error, because
guessing a threshold would silently train on wrong labels. Pixels are taken as stored: EXIF
orientation is ignored so that a JPEG image and its PNG mask cannot end up rotated differently.

Problems are found in two places. Building the dataset checks the file system: an image without a
mask, a split-file entry without an image, two files with one stem. Loading a sample checks the
content: an unreadable file, an image and mask of different size, a non-binary mask;
:meth:`CrackDataset.validate` loads every sample once. With ``on_error="raise"`` a problem raises
:class:`DatasetError` naming the file; with ``"skip"`` the sample is dropped with a warning naming
it. :meth:`CrackDataset.load` always raises, since its index is already promised: in skip mode call
``validate()`` first.
"""

from __future__ import annotations

import difflib
import functools
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from crackseg.edge.artifact.errors import CracksegError

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "CrackDataset",
    "DatasetError",
    "read_mask",
    "read_split_file",
    "resolve_split",
    "split_file",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")
"""Lossless formats only: JPEG compression puts non-binary values along every crack edge."""

_KNOWN_SUFFIXES = frozenset(IMAGE_SUFFIXES + MASK_SUFFIXES)
_IMAGE_KINDS = "{" + ",".join(suffix[1:] for suffix in IMAGE_SUFFIXES) + "}"
_MASK_KINDS = "{" + ",".join(suffix[1:] for suffix in MASK_SUFFIXES) + "}"
_SPLITS_DIR = Path(__file__).with_name("splits")
_MAX_LISTED_PROBLEMS = 20

OnError = Literal["raise", "skip"]


class DatasetError(CracksegError, ValueError):
    """A dataset folder, split file or sample is missing, unreadable or inconsistent."""


class _Sample(NamedTuple):
    stem: str
    image: Path
    mask: Path


def read_split_file(path: str | os.PathLike[str]) -> list[str]:
    """Read the stems listed in a split file, one per line; ``#`` starts a comment.

    Raises:
        DatasetError: the file is missing, lists no stem, repeats one, or has one that is
            absolute or climbs out of the dataset with ``..``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read split file {path}: {exc.strerror or exc}") from exc
    stems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        stem = line.split("#", 1)[0].strip()
        if not stem:
            continue
        where = f"{path}:{number}"
        _check_relative(stem, where)
        if stem in seen:
            raise DatasetError(f"{where}: stem {stem!r} is listed twice")
        seen.add(stem)
        stems.append(stem)
    if not stems:
        raise DatasetError(f"split file {path} lists no stems")
    return stems


def split_file(name: str) -> Path:
    """Path of a split file bundled with crackseg, e.g. ``split_file("deepcrack_val")``."""
    names = sorted(path.stem for path in _SPLITS_DIR.glob("*.txt"))
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown split {name!r}{hint} (bundled splits: {', '.join(names)})")
    return _SPLITS_DIR / f"{name}.txt"


def resolve_split(text: str) -> str | Path:
    """A split given on the command line: a ``.txt`` path, a bundled split name, or a subfolder name."""
    if text.endswith(".txt"):
        return Path(text)
    try:
        return split_file(text)
    except DatasetError:
        return text


class CrackDataset:
    """Image/mask pairs of one dataset split, loaded on demand.

    Args:
        root: the dataset folder, holding ``images/`` and ``masks/``.
        split: ``None`` for the flat folders, a subfolder name (``"train"``), or a split file
            (any path ending in ``.txt``, relative to the working directory).
        on_error: ``"raise"`` a :class:`DatasetError` on a bad sample, or ``"skip"`` it with a warning.
        exclude: stems to leave out, in addition to those in ``root/exclude.txt``.

    Attributes:
        images_dir: the folder stems are relative to.
        skipped: why each dropped sample was dropped (skip mode).

    Raises:
        DatasetError: a folder or split file is missing, a sample is bad in raise mode, or no
            sample is left.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | os.PathLike[str] | None = None,
        *,
        on_error: OnError = "raise",
        exclude: Iterable[str] = (),
    ) -> None:
        root = Path(root)
        images_dir, masks_dir = root / "images", root / "masks"
        excluded = set(exclude)
        if (root / "exclude.txt").is_file():
            excluded.update(read_split_file(root / "exclude.txt"))
        if split is None:
            stems = _list_stems(images_dir)
        elif Path(split).suffix == ".txt":
            stems = read_split_file(split)
        else:
            subfolder = os.fspath(split)
            _check_relative(subfolder, f"split {subfolder!r}")
            if not (images_dir / subfolder).is_dir():
                available = sorted(p.name for p in images_dir.iterdir() if p.is_dir()) if images_dir.is_dir() else []
                raise DatasetError(
                    f"no split folder {images_dir / subfolder} (subfolders there: {', '.join(available) or 'none'})"
                )
            stems = [f"{subfolder}/{stem}" for stem in _list_stems(images_dir / subfolder)]
        self._setup(images_dir, masks_dir, stems, on_error, excluded)

    @classmethod
    def from_folders(
        cls,
        images_dir: str | os.PathLike[str],
        masks_dir: str | os.PathLike[str],
        *,
        on_error: OnError = "raise",
        exclude: Iterable[str] = (),
    ) -> CrackDataset:
        """Pair every image in ``images_dir`` with the mask of the same stem in ``masks_dir``."""
        dataset = cls.__new__(cls)
        images_dir = Path(images_dir)
        dataset._setup(images_dir, Path(masks_dir), _list_stems(images_dir), on_error, set(exclude))
        return dataset

    def _setup(
        self, images_dir: Path, masks_dir: Path, stems: Sequence[str], on_error: OnError, exclude: set[str]
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.images_dir = images_dir
        self.masks_dir = masks_dir
        self.on_error: OnError = on_error
        self.skipped: list[str] = []
        self._samples, problems = _pair(images_dir, masks_dir, [s for s in stems if s not in exclude])
        self._handle(problems)

    def _handle(self, problems: list[str]) -> None:
        """Raise for the problems found, or warn and record them; then insist on a non-empty dataset."""
        if problems and self.on_error == "raise":
            listed = problems[:_MAX_LISTED_PROBLEMS]
            more = len(problems) - len(listed)
            raise DatasetError("\n".join(listed + ([f"... and {more} more"] if more else [])))
        for problem in problems:
            warnings.warn(f"skipping sample: {problem}", stacklevel=3)
        self.skipped.extend(problems)
        if not self._samples:
            skipped = f" ({len(self.skipped)} skipped)" if self.skipped else ""
            raise DatasetError(f"no usable samples in {self.images_dir}{skipped}")

    def __len__(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(images_dir={str(self.images_dir)!r}, samples={len(self)})"

    @property
    def stems(self) -> list[str]:
        """Sample stems in load order: paths relative to the images folder, without suffix."""
        return [sample.stem for sample in self._samples]

    def image_path(self, index: int) -> Path:
        return self._samples[index].image

    def mask_path(self, index: int) -> Path:
        return self._samples[index].mask

    def load(self, index: int) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Read and check one sample.

        Returns:
            ``(image, mask)``: uint8 RGB ``(H, W, 3)`` and bool ``(H, W)``, True on crack.

        Raises:
            DatasetError: a file is unreadable, the sizes differ, or the mask is not binary.
        """
        sample = self._samples[index]
        image = np.asarray(cv2.cvtColor(_decode(sample.image, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), dtype=np.uint8)
        mask = read_mask(sample.mask)
        if image.shape[:2] != mask.shape:
            raise DatasetError(
                f"size mismatch: image {sample.image} is {image.shape[1]}x{image.shape[0]} "
                f"but mask {sample.mask} is {mask.shape[1]}x{mask.shape[0]}"
            )
        return image, mask

    def validate(self) -> None:
        """Load every sample once; raise on the bad ones, or drop them with a warning in skip mode."""
        problems: list[str] = []
        good: list[_Sample] = []
        for index in tqdm(range(len(self)), desc=f"checking {self.images_dir}", unit="img", leave=False, disable=None):
            try:
                self.load(index)
            except DatasetError as exc:
                problems.append(str(exc))
            else:
                good.append(self._samples[index])
        if self.on_error == "skip":
            self._samples = good
        self._handle(problems)


def _check_relative(stem: str, where: str) -> None:
    path = PurePosixPath(stem)
    if path.is_absolute() or ".." in path.parts or "\\" in stem:
        raise DatasetError(f"{where}: {stem!r} must be a relative path with '/' separators and no '..'")


def _index(folder: Path) -> dict[str, list[Path]]:
    """Image and mask files in ``folder`` by stem (suffixes in any case); hidden files are ignored."""
    found: dict[str, list[Path]] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in _KNOWN_SUFFIXES:
                found.setdefault(path.stem, []).append(path)
    return found


def _pair(images_dir: Path, masks_dir: Path, stems: Sequence[str]) -> tuple[list[_Sample], list[str]]:
    """Find each stem's image and mask file; return the samples and what went wrong with the others."""
    listing = functools.cache(_index)
    samples: list[_Sample] = []
    problems: list[str] = []
    for stem in stems:
        relative = PurePosixPath(stem)
        image_folder, mask_folder = images_dir / relative.parent, masks_dir / relative.parent
        images = [p for p in listing(image_folder).get(relative.name, []) if p.suffix.lower() in IMAGE_SUFFIXES]
        masks = [p for p in listing(mask_folder).get(relative.name, []) if p.suffix.lower() in MASK_SUFFIXES]
        if not images:
            problems.append(f"no image for stem {stem!r}: no {relative.name}.{_IMAGE_KINDS} in {image_folder}")
        elif len(images) > 1:
            problems.append(f"ambiguous image for stem {stem!r}: {', '.join(map(str, images))}")
        elif not masks:
            problems.append(f"missing mask for image {images[0]}: no {relative.name}.{_MASK_KINDS} in {mask_folder}")
        elif len(masks) > 1:
            problems.append(f"ambiguous mask for image {images[0]}: {', '.join(map(str, masks))}")
        else:
            samples.append(_Sample(stem, images[0], masks[0]))
    return samples, problems


def _list_stems(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DatasetError(f"no image folder {folder}")
    stems = [stem for stem, paths in _index(folder).items() if any(p.suffix.lower() in IMAGE_SUFFIXES for p in paths)]
    if not stems:
        subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
        hint = f" (it has split subfolders {', '.join(subfolders)}: pass split=)" if subfolders else ""
        raise DatasetError(f"no images in {folder}{hint}")
    return stems


def _decode(path: Path, flags: int) -> NDArray[Any]:
    """Decode an image file; bytes are read by numpy so that non-ASCII paths work everywhere."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        array = cv2.imdecode(data, flags | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    except cv2.error:
        array = None
    if array is None:
        raise DatasetError(f"cannot decode {path}: not a readable image (corrupt, empty or unsupported format)")
    return np.asarray(array)


def read_mask(path: Path) -> NDArray[np.bool_]:
    """A binary mask file as bool ``(H, W)``; raises :class:`DatasetError` if unreadable or not binary."""
    return _binary_mask(_decode(path, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH), path)


def _binary_mask(grey: NDArray[Any], path: Path) -> NDArray[np.bool_]:
    """Crack where the mask is 255; a {0, 1}-valued mask marks crack with 1.

    The mask is decoded at its stored bit depth, so a 16-bit mask is judged by its real values
    instead of being silently rescaled to 8 bits.
    """
    if grey.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"mask {path} has {grey.dtype} pixels (expected 8-bit, values 0 and 255)")
    values = np.flatnonzero(np.bincount(grey.ravel(), minlength=256))
    if set(values.tolist()) <= {0, 255}:
        return grey == 255
    if set(values.tolist()) <= {0, 1}:
        return grey == 1
    shown = ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
    raise DatasetError(f"mask {path} is not binary: values {shown} (expected 0 and 255, or 0 and 1)")
