"""One reader for every artifact's spec, chosen by file suffix, with one error type (:class:`SpecError`).

Torch-free: a checkpoint's spec is read from its safetensors header, an ONNX file's from ``metadata_props``
(protobuf only, weights left on disk), an engine's from its manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crackseg.edge.artifact.kinds import KIND_NAMES, MODEL_SUFFIXES, ArtifactKind, model_kind
from crackseg.edge.artifact.manifest import read_manifest
from crackseg.edge.artifact.metadata import onnx_metadata
from crackseg.edge.artifact.spec import ModelSpec, SpecError, spec_from_metadata

if TYPE_CHECKING:
    import onnx

__all__ = ["MODEL_SUFFIXES", "load_onnx", "read_spec"]


def _checkpoint_spec(path: Path) -> ModelSpec:
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise SpecError(f"reading {path} needs safetensors: pip install 'crackseg[train]'") from exc
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise SpecError(f"{path} is not a safetensors checkpoint: {exc}") from exc
    return spec_from_metadata(metadata, path)


def load_onnx(path: str | Path, weights: bool = True) -> tuple[onnx.ModelProto, ModelSpec]:
    """An ONNX file and the spec in its ``metadata_props``; with ``weights=False``, external weights stay on disk.

    Raises:
        SpecError: the file is missing, unreadable, or carries no valid spec.
    """
    path = Path(path)
    try:
        import onnx
    except ImportError as exc:
        raise SpecError(f"reading {path} needs onnx: pip install 'crackseg[export]'") from exc
    if not path.is_file():
        raise SpecError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=weights)
    except Exception as exc:  # protobuf raises DecodeError and friends for corrupt files
        raise SpecError(f"{path} is not a readable ONNX file: {exc}") from exc
    return model, spec_from_metadata(onnx_metadata(model), path)


def _onnx_spec(path: Path) -> ModelSpec:
    return load_onnx(path, weights=False)[1]


def _engine_spec(path: Path) -> ModelSpec:
    return read_manifest(path).spec


_READERS: dict[ArtifactKind, Callable[[Path], ModelSpec]] = {
    "checkpoint": _checkpoint_spec,
    "onnx": _onnx_spec,
    "engine": _engine_spec,
}


def read_spec(path: str | Path) -> ModelSpec:
    """The model spec an artifact carries, without loading its weights.

    Raises:
        SpecError: the file is missing, of an unknown kind, unreadable, or carries no valid spec.
    """
    path = Path(path)
    kind = model_kind(path)
    if kind is None:
        raise SpecError(f"cannot tell what {path.name!r} is: expected one of {', '.join(MODEL_SUFFIXES)}")
    if not path.is_file():
        raise SpecError(f"{KIND_NAMES[kind]} not found: {path}")
    return _READERS[kind](path)
