"""Training sources: several crack datasets, each with its own splits, sampling weight and label style.

A model that must work on drone, crawler and hand-held imagery is trained on all of them at once. Each
source is written on the command line as one ``--data`` value::

    ROOT[:TRAIN_SPLIT[:VAL_SPLIT]][:weight=W][:dilate=PX][:ignore=PX][:negatives=DIR][:tol=PX]

- ``ROOT``: the dataset folder (``images/`` and ``masks/``).
- ``TRAIN_SPLIT``, ``VAL_SPLIT``: a subfolder name, a split file or a bundled split, as for a single
  dataset; omitted ones fall back to ``--train-split`` / ``--val-split``.
- ``weight``: the source's share of every epoch's samples, relative to the other sources' weights
  (default 1: every source equally often, whatever its size). ``weight=0`` validates on the source
  without ever training on it: a held-out domain, to measure what generalizes.
- ``dilate``: grow the training labels by this many pixels, for datasets annotated with 1-px
  centrelines (UAV75), so that a prediction as wide as the visible crack is not trained as wrong.
- ``ignore``: the tolerance-aware alternative to ``dilate``: pixels within this many pixels of a
  labelled crack count 0 in the loss (:mod:`crackseg.train.data.pixel_weights`).
- ``negatives``: a folder under ``ROOT`` laid out like ``masks/`` (UAV75's ``planking``) whose regions
  are trained as hard negatives.
- ``tol``: score this source's validation with the tolerance protocol (a predicted pixel within
  ``tol`` px of a labelled one counts), again for centreline labels.

Torch-free: the sampler that draws by weight lives in :mod:`crackseg.train.data.torch_dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crackseg.edge.evaluation.dataset import CrackDataset, DatasetError, OnError, resolve_split
from crackseg.train.data.pixel_weights import grow
from crackseg.train.data.regions import WithRegions

__all__ = ["SOURCE_SYNTAX", "DataSource", "LabelDilation", "parse_source"]

SOURCE_SYNTAX = "ROOT[:TRAIN[:VAL]][:weight=W][:dilate=PX][:ignore=PX][:negatives=DIR][:tol=PX]"
"""How one ``--data`` value is written (the command lines' metavar)."""

_OPTIONS = ("weight", "dilate", "ignore", "negatives", "tol")
_TOLERANCES = (0, 1, 2, 5)


@dataclass(frozen=True)
class DataSource:
    """One dataset's part in a training run (see the module docstring for the command-line form)."""

    root: Path
    train_split: str
    val_split: str
    weight: float = 1.0
    dilate_px: int = 0
    ignore_px: int = 0
    negatives: str | None = None
    val_tolerance_px: int = 0

    @property
    def name(self) -> str:
        return self.root.name

    def train_set(self, on_error: OnError = "raise") -> CrackDataset:
        return CrackDataset(self.root, resolve_split(self.train_split), on_error=on_error)

    def with_regions(self, samples: CrackDataset) -> CrackDataset | WithRegions:
        """The training samples with this source's hard-negative regions as a second label plane, if any."""
        return WithRegions(samples, self.root / self.negatives) if self.negatives else samples

    def val_set(self, on_error: OnError = "raise") -> CrackDataset:
        return CrackDataset(self.root, resolve_split(self.val_split), on_error=on_error)

    def describe(self) -> dict[str, object]:
        """What the model spec records of this source."""
        return {
            "dataset": self.name,
            "train_split": self.train_split,
            "val_split": self.val_split,
            "weight": self.weight,
            "dilate_px": self.dilate_px,
            "ignore_px": self.ignore_px,
            "negatives": self.negatives,
            "val_tolerance_px": self.val_tolerance_px,
        }


def parse_source(text: str, default_train: str | None = None, default_val: str | None = None) -> DataSource:
    """Parses one ``--data`` value; every mistake raises :class:`DatasetError` naming the value."""
    root, *fields = text.split(":")
    if not root:
        raise DatasetError(f"--data {text!r}: the dataset folder is missing before the first ':'")
    splits = [field for field in fields if "=" not in field]
    options = dict(_option(field, text) for field in fields if "=" in field)
    if len(splits) > 2:
        raise DatasetError(f"--data {text!r}: expected ROOT[:TRAIN[:VAL]], got {len(splits)} splits")
    train, val = [*splits, None, None][:2]
    train = train or default_train
    val = val or default_val
    if not train or not val:
        missing = "training" if not train else "validation"
        raise DatasetError(
            f"--data {text!r} names no {missing} split: write ROOT:TRAIN:VAL, or pass --train-split/--val-split"
        )
    source = DataSource(
        Path(root),
        train,
        val,
        weight=_number(options, "weight", 1.0, text),
        dilate_px=_whole_number(options, "dilate", text),
        ignore_px=_whole_number(options, "ignore", text),
        negatives=options.get("negatives"),
        val_tolerance_px=_whole_number(options, "tol", text),
    )
    if not source.root.is_dir():
        raise DatasetError(f"--data {text!r}: dataset folder not found: {source.root}")
    if source.weight < 0:
        raise DatasetError(f"--data {text!r}: weight must be 0 (validation only) or positive, not {source.weight}")
    for key, pixels in (("dilate", source.dilate_px), ("ignore", source.ignore_px)):
        if not 0 <= pixels <= 5:
            raise DatasetError(f"--data {text!r}: {key} must be 0-5 px, not {pixels}")
    if source.negatives is not None and not (source.negatives and (source.root / source.negatives).is_dir()):
        raise DatasetError(f"--data {text!r}: hard-negative folder not found: {source.root / source.negatives}")
    if source.val_tolerance_px not in _TOLERANCES:
        raise DatasetError(f"--data {text!r}: tol must be one of {_TOLERANCES}, not {source.val_tolerance_px}")
    return source


def _option(field: str, text: str) -> tuple[str, str]:
    key, _, value = field.partition("=")
    if key not in _OPTIONS:
        raise DatasetError(f"--data {text!r}: unknown option {key!r} (options: {', '.join(_OPTIONS)})")
    return key, value


def _number(options: dict[str, str], key: str, default: float, text: str) -> float:
    if key not in options:
        return default
    try:
        return float(options[key])
    except ValueError:
        raise DatasetError(f"--data {text!r}: {key} must be a number, not {options[key]!r}") from None


def _whole_number(options: dict[str, str], key: str, text: str) -> int:
    value = _number(options, key, 0.0, text)
    if not value.is_integer():
        raise DatasetError(f"--data {text!r}: {key} must be a whole number of pixels, not {options[key]!r}")
    return int(value)


@dataclass(frozen=True)
class LabelDilation:
    """Grows crack labels (the first label plane) by ``radius_px`` with a disc, before any geometric augmentation.

    Dilating first keeps the widened line consistent through rotation and rescaling; it is a
    training-time choice only, validation is scored on the labels as annotated.
    """

    radius_px: int

    def __call__(
        self, image: NDArray[np.uint8], mask: NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        if self.radius_px == 0:
            return image, mask
        grown = grow(mask if mask.ndim == 2 else mask[..., 0], self.radius_px)
        return image, grown if mask.ndim == 2 else np.dstack([grown, mask[..., 1:]])
