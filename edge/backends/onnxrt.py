"""ONNX Runtime backend: TensorRT, CUDA or CPU execution provider, whichever is present, in that order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crackseg.edge.artifact.spec import INPUT_NAME, OUTPUT_NAME, ModelSpec, spec_from_metadata
from crackseg.edge.backends.base import BackendError, Runner
from crackseg.edge.backends.signature import ModelSignature, check_signature

__all__ = ["PREFERRED_PROVIDERS", "OnnxRuntimeRunner"]

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _session_options(threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return options


def _shape(dims: list[int | str | None]) -> tuple[int | None, ...]:
    """An ONNX Runtime shape with its symbolic axes (names or ``None``) as ``None``."""
    return tuple(size if isinstance(size, int) else None for size in dims)


def _dtype(onnx_type: str) -> str:
    """``tensor(float)`` -> ``float32``, ``tensor(float16)`` -> ``float16``, others unchanged inside the brackets."""
    name = onnx_type.removeprefix("tensor(").removesuffix(")")
    return "float32" if name == "float" else name


class OnnxRuntimeRunner(Runner):
    """Runs a crackseg ONNX file (FP32, FP16 or Q/DQ INT8) with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers to try, in order; defaults to :data:`PREFERRED_PROVIDERS`.
        threads: intra-op threads (``None`` lets ONNX Runtime choose).
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, providers: tuple[str, ...] = PREFERRED_PROVIDERS, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.requested_providers = providers
        self.threads = threads
        self._session: Any = None
        self._spec: ModelSpec | None = None
        self._input_dtype: type = np.float32

    @property
    def spec(self) -> ModelSpec:
        if self._spec is None:
            raise BackendError("the ONNX Runtime runner is not active")
        return self._spec

    @property
    def providers(self) -> list[str]:
        """The providers the active session actually uses."""
        return list(self._session.get_providers()) if self._session is not None else []

    def activate_impl(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("onnxruntime is not installed: pip install 'crackseg[edge]'") from exc
        if not self.path.is_file():
            raise BackendError(f"model file not found: {self.path}")
        available = set(ort.get_available_providers())
        providers = [p for p in self.requested_providers if p in available]
        if not providers:
            raise BackendError(
                f"none of the providers {list(self.requested_providers)} is available ({sorted(available)})"
            )
        try:
            session = ort.InferenceSession(str(self.path), _session_options(self.threads), providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise BackendError(f"{self.path} cannot be loaded by ONNX Runtime: {exc}") from exc
        self._spec = spec_from_metadata(session.get_modelmeta().custom_metadata_map, self.path)
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = {o.name: o for o in session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise BackendError(f"{self.path} does not have the '{INPUT_NAME}' -> '{OUTPUT_NAME}' signature")
        image, prob = inputs[INPUT_NAME], outputs[OUTPUT_NAME]
        self.signature = ModelSignature(str(self.path), _shape(image.shape), _dtype(image.type), _shape(prob.shape))
        check_signature(self.signature, self._spec)
        self._input_dtype = np.float16 if image.type == "tensor(float16)" else np.float32
        self._session = session

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        (prob,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: image.astype(self._input_dtype, copy=False)})
        return np.asarray(prob, dtype=np.float32)

    def close_impl(self) -> None:
        self._session = None
