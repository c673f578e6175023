"""SHA-256 of artifacts: manifests pin engines and ONNX files by it, the wire names the model by it."""

from __future__ import annotations

import hashlib
from os import PathLike
from pathlib import Path

__all__ = ["sha256_bytes", "sha256_file"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (engines and checkpoints may be hundreds of MiB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
