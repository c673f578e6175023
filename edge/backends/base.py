"""The runner interface every inference backend implements (Polygraphy-style template)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.errors import CracksegError

__all__ = ["BackendError", "Runner"]


class BackendError(CracksegError, RuntimeError):
    """A model file cannot be loaded or run by a backend; the message says why."""


class Runner(ABC):
    """Loads a model in :meth:`activate`, runs it in :meth:`infer`, frees it in :meth:`close`.

    Public methods check state and record :attr:`last_latency_s`; subclasses implement the ``*_impl``
    methods. Outputs never alias buffers the runner reuses: callers may keep them.
    """

    name: str = "runner"

    def __init__(self) -> None:
        self.is_active = False
        self.last_latency_s = 0.0

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

    def infer(self, image: np.ndarray) -> np.ndarray:
        """Runs the network on a normalized ``Nx3xHxW`` float32 batch; returns ``Nx1xHxW`` probabilities."""
        if not self.is_active:
            raise BackendError(f"{self.name} runner used before activate()")
        if image.ndim != 4 or image.dtype != np.float32:
            raise ValueError(f"expected an Nx3xHxW float32 batch, got {image.dtype} {image.shape}")
        start = time.perf_counter()
        prob = self.infer_impl(image)
        self.last_latency_s = time.perf_counter() - start
        return prob

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

    @abstractmethod
    def close_impl(self) -> None: ...
