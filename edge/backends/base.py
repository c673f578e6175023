"""The runner interface every inference backend implements (Polygraphy-style template)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from crackseg.edge.artifact.errors import ArtifactError
from crackseg.edge.artifact.spec import ModelSpec

if TYPE_CHECKING:
    from crackseg.edge.backends.signature import ModelSignature

__all__ = ["BackendError", "Runner"]


class BackendError(ArtifactError, RuntimeError):
    """A model file cannot be loaded or run by a backend; the message says why."""


class Runner(ABC):
    """Loads a model in :meth:`activate`, runs it in :meth:`infer`, frees it in :meth:`close`.

    Public methods check state and record :attr:`last_latency_s`; subclasses implement the ``*_impl``
    methods. Outputs never alias buffers the runner reuses: callers may keep them. Runners that load a
    model file set :attr:`signature` when active, after checking it against the spec.
    """

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self.last_latency_s = 0.0
        self.signature: ModelSignature | None = None

    @property
    @abstractmethod
    def spec(self) -> ModelSpec:
        """The model spec carried by the loaded artifact."""

    @property
    def measurement_note(self) -> str | None:
        """Set by a measuring instrument (the replay backend): every report and log line of its runs says it."""
        return None

    def activate(self) -> Runner:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    @property
    def thresholds_on_device(self) -> bool:
        """:meth:`infer_mask` thresholds where the output is made (a GPU), so only the mask crosses to the host."""
        return False

    def infer(self, image: np.ndarray) -> np.ndarray:
        """Runs the network on a normalized ``Nx3xHxW`` float32 batch; returns ``Nx1xHxW`` probabilities."""
        return self._call(self.infer_impl, image)

    def infer_mask(self, image: np.ndarray, threshold: float) -> np.ndarray:
        """The ``Nx1xHxW`` bool mask ``probability > threshold`` of a batch (``threshold`` compared as float32,
        as numpy compares a float32 map with it); made on the device where :attr:`thresholds_on_device`."""
        return self._call(lambda batch: self.infer_mask_impl(batch, threshold), image)

    def _call(self, run: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
        if not self.is_active:
            raise BackendError(f"{self.name} runner used before activate()")
        if image.ndim != 4 or image.dtype != np.float32:
            raise ValueError(f"expected an Nx3xHxW float32 batch, got {image.dtype} {image.shape}")
        start = time.perf_counter()
        output = run(image)
        self.last_latency_s = time.perf_counter() - start
        expected = (image.shape[0], 1, *image.shape[2:])
        if getattr(output, "shape", None) != expected:  # symbolic output dimensions hide this until now
            raise BackendError(
                f"{self.name}: the model returned {_dims(output)} for a {_dims(image)} batch; the spec promises one "
                f"probability map per image at input resolution ({_dims(expected)})"
            )
        return output

    def close(self) -> None:
        if self.is_active:
            self.close_impl()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def activate_impl(self) -> None: ...

    @abstractmethod
    def infer_impl(self, image: np.ndarray) -> np.ndarray: ...

    def infer_mask_impl(self, image: np.ndarray, threshold: float) -> np.ndarray:
        """Thresholds on the host; a runner with :attr:`thresholds_on_device` overrides it."""
        mask: np.ndarray = self.infer_impl(image) > threshold
        return mask

    @abstractmethod
    def close_impl(self) -> None: ...


def _dims(value: object) -> str:
    """``1x1x48x64`` for an array or a shape."""
    shape = getattr(value, "shape", value)
    return "x".join(str(n) for n in shape) if isinstance(shape, tuple) else type(value).__name__
