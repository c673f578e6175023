"""The base class for expected failures (bad input, missing files, no device), and the one for bad artifacts."""

from __future__ import annotations

__all__ = ["ArtifactError", "CracksegError"]


class CracksegError(Exception):
    """A failure the user can act on: the CLI prints the message on one line and exits 1, no traceback.

    Anything else that escapes a command is a bug and keeps its traceback.
    """


class ArtifactError(CracksegError):
    """A model file crackseg cannot use: missing, unreadable, foreign, without a valid spec, stale or refused.

    The one family for a bad artifact, whichever path read it: :class:`~crackseg.edge.artifact.spec.SpecError`
    (and its manifest variant), the runners' ``BackendError``, the ONNX exporter's ``ExportError`` and the
    checkpoint loader's ``CheckpointError`` derive from it, so ``except ArtifactError`` catches them all.
    """
