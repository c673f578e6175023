"""Precision names: what an ONNX file or an engine computes in, as every stage and the CLI spell it."""

from __future__ import annotations

from typing import Literal

__all__ = ["PRECISIONS", "Precision"]

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")
