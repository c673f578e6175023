"""Python client of the mask stream: what a vehicle controller (or ``crackseg listen``) uses to receive masks.

    with Subscriber("tcp://127.0.0.1:5557", conflate=True) as sub:
        while True:
            message = sub.receive(timeout_s=3 * HEARTBEAT_PERIOD_S)
            if message is None:
                ...  # nothing for three heartbeat periods: the link or the pipeline is down
            elif message.mask is not None:
                act_on(message.stats, message.mask)

Messages are decoded and fully validated (:meth:`MaskMessage.from_bytes`); anything malformed is
counted in :attr:`Subscriber.rejected` and skipped, never raised: a subscriber faces whatever arrives.
"""

from __future__ import annotations

import logging
import time

from crackseg.edge.runtime.sinks.publish_zmq import PublishError, SocketOwner, import_zmq
from crackseg.edge.runtime.wire import DEFAULT_ENDPOINT, DEFAULT_TOPIC, MaskMessage, WireError

__all__ = ["Subscriber"]

log = logging.getLogger(__name__)


class Subscriber(SocketOwner):
    """A ``SUB`` socket connected to a crackseg publisher, subscribed to one topic.

    Args:
        endpoint: the publisher's address.
        topic: the publisher's topic prefix (one socket per topic: see ``edge/WIRE.md``).
        conflate: keep only the newest message (``ZMQ_CONFLATE``): a control loop never reads a backlog.
        rcvhwm: receive high-water mark when not conflating.
        curve_server_key: the publisher's CurveZMQ public key (Z85); enables encryption.
        curve_public_key, curve_secret_key: this client's keypair; an ephemeral one when omitted.

    Attributes:
        received: messages decoded (frames and heartbeats).
        rejected: messages that failed validation.
        missed: messages the publisher sent that never arrived, from gaps in ``seq``.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        topic: bytes = DEFAULT_TOPIC,
        conflate: bool = False,
        rcvhwm: int = 1000,
        curve_server_key: bytes | None = None,
        curve_public_key: bytes | None = None,
        curve_secret_key: bytes | None = None,
    ) -> None:
        if (curve_public_key is None) != (curve_secret_key is None):
            raise PublishError("a CurveZMQ client keypair needs both the public and the secret key")
        if curve_public_key is not None and curve_server_key is None:
            raise PublishError("a CurveZMQ client keypair needs the server's public key too")
        self.endpoint = endpoint
        self.topic = topic
        self.conflate = conflate
        self.rcvhwm = rcvhwm
        self.curve_server_key = curve_server_key
        self.curve_keypair = (curve_public_key, curve_secret_key) if curve_public_key is not None else None
        self.received = 0
        self.rejected = 0
        self.missed = 0
        self._last_seq: int | None = None

    def open(self) -> None:
        zmq = import_zmq()
        context = zmq.Context()
        socket = context.socket(zmq.SUB)
        try:
            socket.setsockopt(zmq.LINGER, 0)
            if self.conflate:
                socket.setsockopt(zmq.CONFLATE, 1)
            else:
                socket.setsockopt(zmq.RCVHWM, self.rcvhwm)
            if self.curve_server_key is not None:
                public, secret = self.curve_keypair or zmq.curve_keypair()
                socket.curve_serverkey = self.curve_server_key
                socket.curve_publickey = public
                socket.curve_secretkey = secret
            socket.setsockopt(zmq.SUBSCRIBE, self.topic)
            socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close()
            context.term()
            raise PublishError(f"cannot subscribe to {self.endpoint}: {exc}") from None
        self._context, self._socket = context, socket

    def receive(self, timeout_s: float) -> MaskMessage | None:
        """The next valid message (a mask frame or a heartbeat), or ``None`` if none came within ``timeout_s``."""
        zmq = import_zmq()
        if self._socket is None:
            raise PublishError("Subscriber.receive() before open()")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = max(0, round((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(remaining_ms, zmq.POLLIN):
                return None
            data = self._socket.recv(zmq.NOBLOCK, copy=False).buffer
            message = self._decode(data)
            if message is not None:
                return message

    def _decode(self, data: memoryview) -> MaskMessage | None:
        if bytes(data[: len(self.topic)]) != self.topic:
            self.rejected += 1
            return None
        try:
            message = MaskMessage.from_bytes(data[len(self.topic) :])
        except WireError as exc:
            self.rejected += 1
            log.warning("%s: dropping a malformed message: %s", self.endpoint, exc)
            return None
        if self._last_seq is not None and message.seq > self._last_seq:
            self.missed += message.seq - self._last_seq - 1
        self._last_seq = message.seq
        self.received += 1
        return message
