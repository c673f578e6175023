"""The one writer of ONNX ``metadata_props`` entries (the spec, the calibration record, keys a tool leaves behind)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = ["onnx_metadata", "set_onnx_metadata"]


def onnx_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The model's ``metadata_props`` as a dict."""
    return {prop.key: prop.value for prop in model.metadata_props}


def set_onnx_metadata(model: onnx.ModelProto, key: str, value: str | None) -> None:
    """Stores ``value`` under ``key``, replacing an older entry (``None`` removes it); others keep their order."""
    kept = [prop for prop in model.metadata_props if prop.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if value is not None:
        model.metadata_props.add(key=key, value=value)
