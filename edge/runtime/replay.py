"""The replay backend: a measuring instrument for the runtime, not a way to segment anything.

A real model (any runner) computes the probability maps of a set of inputs once, beforehand
(:meth:`ReplayRunner.record`). Afterwards each ``infer`` of one of those inputs returns its recorded
map after a fixed latency spent in ``time.sleep``, which releases the GIL as a GPU backend waiting on
its device does. The runtime around it (pre- and postprocessing, publishing) then does exactly the work
it does with the real model, on the real masks, at any inference rate, on any machine: ``crackseg bench
--backend replay --replay-ms 5`` measures whether the runtime keeps up with a 200 fps network.

Inputs are recognised by a fingerprint (an evenly strided sample of their values and their shape),
checked at recording to tell every recorded input apart; an input that was not recorded is an error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

import numpy as np

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.base import BackendError, Runner
from crackseg.edge.runtime.geometry import Geometry

__all__ = ["ReplayRunner"]

_FINGERPRINT_VALUES = 4096
"""Values sampled to recognise an input: a few microseconds to gather; :meth:`ReplayRunner.record` checks that
they tell every recorded input apart."""


def _fingerprint(batch: np.ndarray) -> bytes:
    flat = batch.reshape(-1)
    step = max(1, flat.size // _FINGERPRINT_VALUES)
    return np.array(batch.shape, np.int64).tobytes() + flat[::step].tobytes()


class ReplayRunner(Runner):
    """Returns the recorded maps of a real model after ``latency_s`` (see the module docstring).

    Args:
        model: the real model's runner; activated, and closed, with this one.
        latency_s: how long each call takes, from its start to its return.
    """

    name = "replay"

    def __init__(self, model: Runner, latency_s: float) -> None:
        super().__init__()
        if latency_s < 0:
            raise BackendError(f"the replay latency must be >= 0, got {latency_s * 1e3:g} ms")
        self.model = model
        self.latency_s = latency_s
        self._maps: dict[bytes, np.ndarray] = {}
        self._digests: dict[bytes, bytes] = {}

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def measurement_note(self) -> str:
        """What every report and log line of a run with this backend says."""
        return (
            f"replay measurement: {self.model.name} probability maps recorded beforehand, "
            f"returned after {self.latency_s * 1e3:g} ms per call"
        )

    def record(self, batch: np.ndarray) -> None:
        """Run the real model on ``batch`` (``Nx3xHxW`` float32) and keep its map for replay."""
        if not self.is_active:
            raise BackendError("replay runner used before activate()")
        key, digest = _fingerprint(batch), hashlib.blake2b(batch.tobytes(), digest_size=16).digest()
        if self._digests.setdefault(key, digest) != digest:
            raise BackendError("two recorded inputs share a fingerprint: replay cannot tell them apart")
        prob = np.array(self.model.infer(batch), dtype=np.float32)  # an owned copy
        prob.flags.writeable = False  # returned as is by every replay: nobody may change it
        self._maps[key] = prob

    def record_frames(self, frames: Iterable[np.ndarray], geometry: Geometry, infer_batch: int = 1) -> None:
        """Record every inference call the pipeline will make for ``frames`` (tiles in ``infer_batch`` chunks)."""
        for frame in frames:
            batch = geometry.to_batch(frame)
            for start in range(0, len(batch), infer_batch):
                self.record(batch[start : start + infer_batch])

    def activate_impl(self) -> None:
        self.model.activate()

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        prob = self._maps.get(_fingerprint(image))
        if prob is None:
            raise BackendError(
                f"replay has no recorded map for this {image.shape} input: it replays only inputs recorded beforehand"
            )
        remaining = self.latency_s - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        return prob

    def close_impl(self) -> None:
        self._maps.clear()
        self._digests.clear()
        self.model.close()
