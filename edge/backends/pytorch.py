"""PyTorch backend, for development and for validating during training. Needs ``crackseg[train]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crackseg.edge.backends.base import BackendError, Runner
from crackseg.edge.spec import ModelSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["TorchRunner"]


class TorchRunner(Runner):
    """Runs a crackseg checkpoint (``.safetensors``) or an in-memory model with PyTorch.

    Args:
        source: a checkpoint path, or a ``(model, spec)`` pair (used by the training loop's validation).
        device: torch device string; ``None`` picks CUDA when available.
        half: run in FP16 (CUDA only).
    """

    name = "pytorch"

    def __init__(self, source: str | Path | tuple[nn.Module, ModelSpec], device: str | None = None, half: bool = False):
        super().__init__()
        self.source = source
        self.device_name = device
        self.half = half
        self._model: Any = None
        self._spec: ModelSpec | None = source[1] if isinstance(source, tuple) else None
        self._device: Any = None
        self._was_training = False

    @property
    def spec(self) -> ModelSpec:
        if self._spec is None:
            raise BackendError("the PyTorch runner is not active")
        return self._spec

    def activate_impl(self) -> None:
        try:
            import torch
        except ImportError as exc:
            raise BackendError("PyTorch is not installed: pip install 'crackseg[train]'") from exc
        from crackseg.train.checkpoint import load_checkpoint

        self._device = torch.device(self.device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(self.source, tuple):
            model = self.source[0]
            self._was_training = model.training
        else:
            model, self._spec = load_checkpoint(self.source)
        model = model.to(self._device).eval()
        self._model = model.half() if self.half else model

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(image).to(self._device)
            prob = self._model(batch.half() if self.half else batch)
            if self._device.type == "cuda":
                torch.cuda.synchronize(self._device)
        return prob.float().cpu().numpy()

    def close_impl(self) -> None:
        if isinstance(self.source, tuple) and self._was_training:
            self._model.train()
        self._model = None
