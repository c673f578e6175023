"""Turning processed frames into wire messages: sequence numbers, publish time, model hash, pose.

Every sink sends what :class:`MessageBuilder` makes, so the pipeline builds each message once and
hands it to the ZeroMQ publisher, the serial link, the recording and the overlay alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from crackseg.edge.runtime.pose import Pose
from crackseg.edge.runtime.postprocess import FrameResult
from crackseg.edge.runtime.wire import MAX_SOURCE_ID_BYTES, MaskEncoding, MaskMessage

__all__ = ["MessageBuilder", "wire_source_id"]

_ELLIPSIS = "…"


def wire_source_id(source_id: str, limit: int = MAX_SOURCE_ID_BYTES) -> str:
    """``source_id`` shortened to at most ``limit`` UTF-8 bytes, keeping its head and tail around an ellipsis.

    The head keeps the scheme and host, the tail the file or stream name; cuts fall on character
    boundaries, so the result is always valid UTF-8.
    """
    raw = source_id.encode()
    if len(raw) <= limit:
        return source_id
    room = limit - len(_ELLIPSIS.encode())
    head = raw[: room // 3].decode(errors="ignore")
    tail = raw[len(raw) - (room - len(head.encode())) :].decode(errors="ignore")
    return head + _ELLIPSIS + tail


class MessageBuilder:
    """Numbers and stamps outgoing messages; frames and heartbeats share one ``seq`` counter.

    Args:
        model_hash: 16-byte hash of the model file (``crackseg.edge.runtime.wire.model_hash``).
        encoding: how masks travel.
        pose_at: the vehicle's pose at a capture time (``PoseTrack.at``), when a pose source is configured;
            without one, frames carry no pose.
    """

    def __init__(
        self,
        model_hash: bytes,
        encoding: MaskEncoding = MaskEncoding.PACKBITS_ZLIB,
        pose_at: Callable[[int], Pose] | None = None,
    ) -> None:
        self.model_hash = model_hash
        self.encoding = encoding
        self.pose_at = pose_at
        self._seq = 0
        self._last_frame: tuple[int, int] = (0, 0)

    def frame(self, result: FrameResult) -> MaskMessage:
        message = MaskMessage(
            seq=self._next_seq(),
            frame_id=result.frame_id,
            source_id=wire_source_id(result.source_id),
            capture_ns=result.capture_ns,
            publish_ns=time.time_ns(),
            model_hash=self.model_hash,
            threshold=result.threshold,
            mask=result.mask,
            stats=result.stats,
            encoding=self.encoding,
            pose=None if self.pose_at is None else self.pose_at(result.capture_ns),
        )
        self._last_frame = (result.frame_id, result.capture_ns)
        return message

    def heartbeat(self, source_id: str, threshold: float) -> MaskMessage:
        """A heartbeat repeating the last published frame's id and capture time (0 before any).

        ``threshold`` is the run's operating threshold, which a controller may check before the first frame.
        """
        frame_id, capture_ns = self._last_frame
        return MaskMessage(
            seq=self._next_seq(),
            frame_id=frame_id,
            source_id=wire_source_id(source_id),
            capture_ns=capture_ns,
            publish_ns=time.time_ns(),
            model_hash=self.model_hash,
            threshold=threshold,
        )

    def _next_seq(self) -> int:
        seq, self._seq = self._seq, self._seq + 1
        return seq
