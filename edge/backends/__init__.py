"""Inference backends, chosen by model file suffix; each module is imported only when chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.kinds import MODEL_SUFFIXES, ArtifactKind, model_kind
from crackseg.edge.backends.base import BackendError, Runner

__all__ = ["BACKENDS", "BackendError", "Runner", "open_runner"]

BACKENDS: dict[ArtifactKind, str] = {
    "onnx": "crackseg.edge.backends.onnxrt:OnnxRuntimeRunner",
    "engine": "crackseg.edge.backends.trt:TensorRTRunner",
    "checkpoint": "crackseg.edge.backends.pytorch:TorchRunner",
}
"""Artifact kind (by suffix, :data:`~crackseg.edge.artifact.kinds.MODEL_KINDS`) -> ``module:Class`` of its runner."""


def open_runner(model_path: str | Path, **options: Any) -> Runner:
    """An inactive runner for ``model_path``, chosen by its suffix; use it as a context manager."""
    path = Path(model_path)
    kind = model_kind(path)
    if kind is None:
        raise BackendError(f"cannot tell the backend for {path.name!r}: expected one of {', '.join(MODEL_SUFFIXES)}")
    module_name, class_name = BACKENDS[kind].split(":")
    runner_class = getattr(importlib.import_module(module_name), class_name)
    runner: Runner = runner_class(path, **options)
    return runner
