"""Inference backends, chosen by model file suffix; each module is imported only when chosen."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from crackseg.edge.backends.base import BackendError, Runner

__all__ = ["BACKENDS", "BackendError", "Runner", "open_runner"]

BACKENDS: dict[str, str] = {
    ".onnx": "crackseg.edge.backends.onnxrt:OnnxRuntimeRunner",
    ".engine": "crackseg.edge.backends.trt:TensorRTRunner",
    ".plan": "crackseg.edge.backends.trt:TensorRTRunner",
    ".safetensors": "crackseg.edge.backends.pytorch:TorchRunner",
}
"""Model file suffix -> ``module:Class`` of the runner that loads it."""


def open_runner(model_path: str | Path, **options: Any) -> Runner:
    """An inactive runner for ``model_path``, chosen by its suffix; use it as a context manager."""
    path = Path(model_path)
    target = BACKENDS.get(path.suffix.lower())
    if target is None:
        raise BackendError(f"cannot tell the backend for {path.name!r}: expected one of {', '.join(BACKENDS)}")
    module_name, class_name = target.split(":")
    runner_class = getattr(importlib.import_module(module_name), class_name)
    runner: Runner = runner_class(path, **options)
    return runner
