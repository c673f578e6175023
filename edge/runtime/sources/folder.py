"""Still images as a stream: a folder, a glob or one file, with optional ground-truth masks.

Used for end-to-end accuracy runs on dataset test splits: ``masks_dir`` attaches each image's mask
(same stem, any image extension) as ``Frame.mask_gt``. Files play in natural order (``img2`` before
``img10``). An unreadable image is logged with its name, counted in ``stats.corrupt_skipped`` and
skipped; a run never stops on one bad file. A truncated JPEG or PNG (a copy cut short, a card pulled
mid-write) counts as unreadable: decoders would fill the missing rows with grey and publish it as a
real frame, so files whose end-of-image marker is missing are refused before decoding. So are empty files,
images whose header announces a side beyond the wire's limit (checked before decoding: a small PNG can
announce gigapixels), and JPEGs that libjpeg reports as damaged while it decodes them (see ``image_check``).

Query options: ``fps`` (float, default 0 = as fast as read), ``loop`` (bool), ``masks_dir`` (path).
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from crackseg.edge.runtime.sources.base import (
    PlaybackItem,
    PlaybackSource,
    QueryOptions,
    SourceError,
    import_cv2,
    parse_bool,
    to_rgb,
)
from crackseg.edge.runtime.sources.image_check import decode_jpeg_strictly, header_size
from crackseg.edge.runtime.sources.uri import IMAGE_EXTENSIONS, Uri

__all__ = ["ImageFolderSource", "list_images", "read_mask"]

log = logging.getLogger(__name__)


_END_MARKERS = {".jpg": b"\xff\xd9", ".jpeg": b"\xff\xd9", ".png": b"IEND\xaeB`\x82"}
"""What the last bytes of a complete file are: JPEG's end-of-image marker, PNG's IEND chunk with its CRC."""


MAX_DIM = 8192
"""Largest image side read: the wire's ``MAX_DIM`` (a test checks they agree; sources import nothing above them)."""


def truncation(path: Path, data: bytes) -> str | None:
    """Why ``data`` (the bytes of ``path``) is a cut-short image, or ``None`` if it ends as its format requires.

    Trailing NUL and whitespace padding, which some writers add after the end marker, is allowed.
    """
    marker = _END_MARKERS.get(path.suffix.lower())
    if marker is None or data.rstrip(b"\x00 \r\n").endswith(marker):
        return None
    return f"truncated {path.suffix.lstrip('.').upper()} (no end-of-image marker after {len(data)} bytes)"


def _natural_key(path: Path) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _is_image(path: Path) -> bool:
    return path.suffix[1:].lower() in IMAGE_EXTENSIONS and path.is_file()


def list_images(uri: Uri) -> list[Path]:
    """The image files a ``file://`` URI names (directory, glob or single file), in natural order."""
    target = Path(uri.path)
    if uri.is_glob:
        files = [Path(p) for p in glob.glob(uri.path, recursive=True)]  # noqa: PTH207 (wildcards in any component)
    elif target.is_dir():
        files = list(target.iterdir())
    elif target.is_file():
        files = [target]
    else:
        raise SourceError(f"no such image file or directory: {target}")
    return sorted((p for p in files if _is_image(p)), key=_natural_key)


def read_mask(path: Path) -> np.ndarray | None:
    """Read a mask image as ``bool (H, W)``: ``{0, 1}`` masks use ``> 0``, 8-bit masks ``> 127``."""
    cv2 = import_cv2()
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        return None
    return raw > (0 if raw.max() <= 1 else 127)


class ImageFolderSource(PlaybackSource):
    """Images from a folder, glob or single file, optionally paired with ground-truth masks.

    Args:
        uri: a ``file://`` URI naming a directory, a glob or an image file.
        fps: pace frames at this rate; 0 = as fast as the consumer reads.
        loop: start again after the last image.
        masks_dir: folder of masks matched to images by file stem; every image must have one.
        source_id: overrides the id stamped on frames (default: the URI).
    """

    QUERY_OPTIONS: ClassVar[QueryOptions] = {"fps": float, "loop": parse_bool, "masks_dir": str}

    def __init__(
        self,
        uri: Uri,
        *,
        fps: float = 0.0,
        loop: bool = False,
        masks_dir: str | Path | None = None,
        source_id: str | None = None,
    ) -> None:
        super().__init__(uri, fps=fps, loop=loop, source_id=source_id)
        self.masks_dir = Path(masks_dir).expanduser() if masks_dir is not None else None
        self.files: list[Path] = []
        self._masks: dict[str, Path] = {}
        self._index = 0

    def __len__(self) -> int:
        return len(self.files)

    def _open_impl(self) -> None:
        import_cv2()
        files = list_images(self.uri)
        if not files:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {self.uri.path}")
        if self.masks_dir is not None:
            self._masks = self._match_masks(files, self.masks_dir)
        self.files = files
        self._index = 0

    @staticmethod
    def _match_masks(files: list[Path], masks_dir: Path) -> dict[str, Path]:
        if not masks_dir.is_dir():
            raise SourceError(f"masks_dir is not a directory: {masks_dir}")
        masks = {p.stem: p for p in sorted(masks_dir.iterdir(), key=_natural_key) if _is_image(p)}
        missing = [p.name for p in files if p.stem not in masks]
        if missing:
            raise SourceError(
                f"{len(missing)} of {len(files)} images have no mask with the same stem in {masks_dir}: "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )
        return masks

    def _next_item(self) -> PlaybackItem | None:
        while self._index < len(self.files):
            path = self.files[self._index]
            self._index += 1
            bgr, problem = self._decode(path)
            if bgr is None:
                self._skip_corrupt(path, problem)
                continue
            mask = None
            if self._masks:
                mask_path = self._masks[path.stem]
                mask = read_mask(mask_path)
                if mask is None:
                    self._skip_corrupt(mask_path)
                    continue
                if mask.shape != bgr.shape[:2]:
                    raise SourceError(
                        f"mask {mask_path.name} is {mask.shape[1]}x{mask.shape[0]} but image {path.name} is "
                        f"{bgr.shape[1]}x{bgr.shape[0]}"
                    )
            return PlaybackItem(to_rgb(bgr), mask, path.stem)
        return None

    @staticmethod
    def _decode(path: Path) -> tuple[np.ndarray | None, str]:
        """The BGR image, or ``None`` and why not (unreadable, truncated, not decodable)."""
        cv2 = import_cv2()
        try:
            data = path.read_bytes()
        except OSError as exc:
            return None, exc.strerror or "cannot be read"
        if not data:
            return None, "empty file"
        problem = truncation(path, data)
        if problem is not None:
            return None, problem
        size = header_size(data)
        if size is not None and not (0 < size.width <= MAX_DIM and 0 < size.height <= MAX_DIM):
            return None, f"its header announces {size} pixels; each side must be 1..{MAX_DIM}"

        def decode() -> np.ndarray | None:
            try:
                image: np.ndarray | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            except cv2.error:
                return None
            return image

        if path.suffix.lower() in (".jpg", ".jpeg"):
            bgr, damage = decode_jpeg_strictly(decode)
            if damage:
                return None, f"damaged JPEG data: {damage[0]}"
        else:
            bgr = decode()
        return bgr, "" if bgr is not None else "not a decodable image"

    def _skip_corrupt(self, path: Path, problem: str = "") -> None:
        self._stats.corrupt_skipped += 1
        log.warning("%s: skipping unreadable image %s%s", self.source_id, path, f" ({problem})" if problem else "")

    def _rewind(self) -> None:
        self._index = 0

    def _close_impl(self) -> None:
        self._index = 0
