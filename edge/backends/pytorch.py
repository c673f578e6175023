"""PyTorch backend, for development, validation during training and GPU speed studies. Needs ``crackseg[train]``.

Beside plain eager execution it offers the usual PyTorch inference speed-ups, each optional so that
``crackseg bench`` can measure them side by side: FP16 weights, channels-last memory layout, replay of a
captured CUDA graph (one graph per input shape, captured on first use), and ``torch.compile``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crackseg.edge.artifact.loaders import network_loader
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.base import BackendError, Runner

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["TorchRunner"]


class _GraphedCall:
    """One input shape's captured CUDA graph: copy in, replay, read the static output."""

    def __init__(self, model: Any, example: torch.Tensor) -> None:
        import torch

        self.input = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph: cuDNN picks its kernels here
            for _ in range(3):
                model(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = model(self.input)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.input.copy_(batch)
        self.graph.replay()
        return self.output


def _to_channels_last(model: nn.Module) -> None:
    """NHWC weights. Done per tensor: ``Module.to(memory_format=...)`` fails on the 5-D unpooling constants."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


class TorchRunner(Runner):
    """Runs a crackseg checkpoint (``.safetensors``) or an in-memory model with PyTorch.

    Args:
        source: a checkpoint path, or a ``(model, spec)`` pair (used by the training loop's validation).
        device: torch device string; ``None`` picks CUDA when available.
        half: run in FP16 (CUDA only).
        channels_last: keep weights and activations in NHWC layout (faster convolutions on tensor cores).
        cuda_graph: capture the forward pass as a CUDA graph per input shape and replay it (CUDA only).
        compile_mode: run ``torch.compile(model, mode=compile_mode)``, e.g. ``"max-autotune"``;
            the first call of each shape compiles (seconds to minutes).
    """

    name = "pytorch"

    def __init__(
        self,
        source: str | Path | tuple[nn.Module, ModelSpec],
        device: str | None = None,
        half: bool = False,
        channels_last: bool = False,
        cuda_graph: bool = False,
        compile_mode: str | None = None,
    ):
        super().__init__()
        if cuda_graph and compile_mode:
            raise BackendError("choose CUDA graph capture or torch.compile, not both (compile modes capture graphs)")
        self.source = source
        self.device_name = device
        self.half = half
        self.channels_last = channels_last
        self.cuda_graph = cuda_graph
        self.compile_mode = compile_mode
        self._model: Any = None
        self._spec: ModelSpec | None = source[1] if isinstance(source, tuple) else None
        self._device: Any = None
        self._was_training = False
        self._graphs: dict[tuple[int, ...], _GraphedCall] = {}

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
        self._device = torch.device(self.device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
        if (self.half or self.cuda_graph) and self._device.type != "cuda":
            raise BackendError(f"FP16 and CUDA graphs need a CUDA device, not {self._device}")
        if isinstance(self.source, tuple):
            model = self.source[0]
            self._was_training = model.training
        else:
            model, self._spec = network_loader(self.source)(Path(self.source))
        model = model.to(self._device).eval()
        if self.half:
            model = model.half()
        if self.channels_last:
            _to_channels_last(model)
        self._model = torch.compile(model, mode=self.compile_mode) if self.compile_mode else model

    def _to_device(self, image: np.ndarray) -> torch.Tensor:
        import torch

        batch = torch.from_numpy(image).to(self._device, dtype=torch.float16 if self.half else torch.float32)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    @property
    def thresholds_on_device(self) -> bool:
        return self._device is not None and self._device.type == "cuda"

    def _forward(self, image: np.ndarray) -> torch.Tensor:
        """The probability map on the device, as float32 (call under ``torch.inference_mode``)."""
        batch = self._to_device(image)
        if self.cuda_graph:
            graphed = self._graphs.get(tuple(batch.shape))
            if graphed is None:
                graphed = self._graphs[tuple(batch.shape)] = _GraphedCall(self._model, batch)
            return graphed(batch).float()
        return self._model(batch).float()

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            result = self._forward(image).cpu().numpy()  # a copy: never aliases the graph's static output
        return result

    def infer_mask_impl(self, image: np.ndarray, threshold: float) -> np.ndarray:
        """Thresholds on the device: a bool mask, a quarter of the float32 map, is all that crosses to the host.

        Not bit-packed there: the host measures the unpacked mask anyway (statistics), so unpacking would
        cost the host more than the 7/8 of a 256 KiB copy it saves on the bus at 512x512.
        """
        import torch

        with torch.inference_mode():
            mask = (self._forward(image) > threshold).cpu().numpy()  # float32 vs a float scalar: as numpy compares
        return mask

    def close_impl(self) -> None:
        if isinstance(self.source, tuple) and self._was_training:
            self._model.train()
        self._model = None
        self._graphs.clear()
