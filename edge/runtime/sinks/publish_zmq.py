"""The ZeroMQ mask publisher (``edge/WIRE.md``): latest-value PUB socket, heartbeats, optional CurveZMQ.

:class:`~crackseg.edge.runtime.message.MessageBuilder` turns processed frames into messages;
:class:`ZmqPublisher` sends them. The socket is a ``PUB`` with a small send high-water mark, and every
send is non-blocking: a slow or absent subscriber loses old messages (it sees gaps in ``seq``), the
pipeline never waits. ``zmq`` is imported only when a publisher opens.

CurveZMQ: the publisher encrypts with its secret key; with a folder of authorized client public keys
(``curve_clients``, key files as ``zmq.auth.create_certificates`` writes them) a ZAP authenticator lets
only those clients connect. A publisher bound beyond loopback without CurveZMQ warns: its masks travel
in clear text on every network the vehicle is on.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any, Literal, TypeVar

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.wire import DEFAULT_ENDPOINT, DEFAULT_TOPIC, MaskEncoding, MaskMessage

__all__ = [
    "ENCODINGS",
    "PublishError",
    "SocketOwner",
    "ZmqPublisher",
    "connect_endpoint",
    "import_zmq",
    "is_loopback",
    "load_curve_clients",
    "load_curve_key",
]

log = logging.getLogger(__name__)

ENCODINGS: dict[str, MaskEncoding] = {
    "raw": MaskEncoding.RAW,
    "png": MaskEncoding.PNG,
    "packbits": MaskEncoding.PACKBITS_ZLIB,
}
"""``--encoding`` names -> wire encodings."""

_Z85_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
_LINGER_MS = 500
"""How long ``close`` waits to hand queued messages to connected peers: the last frames of a finite run arrive."""


class PublishError(CracksegError):
    """The publisher cannot bind its endpoint or load its keys."""


def import_zmq() -> Any:
    """Import pyzmq on first use, so ``crackseg.edge`` imports without it."""
    try:
        import zmq
    except ImportError as exc:
        raise PublishError("pyzmq is needed to publish or receive masks: pip install 'crackseg[edge]'") from exc
    return zmq


def connect_endpoint(bind: str) -> str:
    """Where a local subscriber connects to reach a publisher bound to ``bind`` (wildcards become loopback)."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if bind.startswith(wildcard):
            return "tcp://127.0.0.1:" + bind[len(wildcard) :]
    return bind


def is_loopback(endpoint: str) -> bool:
    """Whether ``endpoint`` is reachable from this machine only (loopback TCP, ``ipc://``, ``inproc://``)."""
    scheme, _, address = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = address.rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def load_curve_key(path: str | Path, kind: Literal["public", "secret"]) -> bytes:
    """A CurveZMQ key (40 Z85 characters) of ``kind`` from a file holding just the key, or from a ZeroMQ certificate.

    A certificate (``zmq.auth.create_certificates``: ``NAME.key`` holds the public key, ``NAME.key_secret``
    both) must hold the kind asked for: a public certificate where a secret key belongs would start a
    publisher nobody can decrypt. Keys live in files, never on the command line, where ``ps`` would show them.
    """
    path = Path(path).expanduser()
    try:
        content = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PublishError(f"cannot read CurveZMQ key file {path}: {exc}") from exc
    key: bytes | None = content.strip().encode()
    if "public-key" in content:
        import_zmq()
        from zmq.auth import load_certificate

        public, secret = load_certificate(str(path))
        key = public if kind == "public" else secret
        if key is None:
            raise PublishError(
                f"{path} is a public key certificate (no secret-key), but a {kind} key is needed here: "
                "pass the NAME.key_secret file that zmq.auth.create_certificates wrote beside it"
            )
    if key is None or len(key) != 40 or not set(key.decode(errors="replace")) <= _Z85_ALPHABET:
        raise PublishError(f"{path} does not hold a CurveZMQ {kind} key (40 Z85 characters)")
    if kind == "secret" and path.stat().st_mode & 0o077:
        log.warning(
            "CurveZMQ secret key %s is readable by other users (mode %o): chmod 600 it",
            path, path.stat().st_mode & 0o777,
        )  # fmt: skip
    return key


def load_curve_clients(folder: str | Path) -> int:
    """Checks a folder of authorized client public keys (``*.key`` certificates); returns how many it holds."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PublishError(f"CurveZMQ client folder {folder} is not a directory")
    keys = sorted(folder.glob("*.key"))
    if not keys:
        raise PublishError(f"{folder} holds no client public key (*.key files from zmq.auth.create_certificates)")
    for key in keys:
        load_curve_key(key, "public")
    return len(keys)


_Owner = TypeVar("_Owner", bound="SocketOwner")


class SocketOwner:
    """Owns one ZeroMQ context and socket from :meth:`open` to :meth:`close`; a context manager."""

    _context: Any = None
    _socket: Any = None

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close the socket (its linger flushes queued messages) and the context."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self: _Owner) -> _Owner:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ZmqPublisher(SocketOwner):
    """Binds a ZeroMQ ``PUB`` socket and sends messages without ever blocking.

    Not thread-safe (no ZeroMQ socket is): one thread, the pipeline's publish stage, calls :meth:`send`.

    Args:
        endpoint: where to bind; the default is loopback only (``tcp://*:5557`` opens it to every interface).
        topic: prefix of every message, in the same frame (see ``edge/WIRE.md``).
        sndhwm: send high-water mark per subscriber; small keeps only the freshest masks queued.
        curve_secret_key: this server's CurveZMQ secret key (Z85); subscribers then need its public key.
        curve_clients: folder of the public keys (``*.key``) of the only clients allowed to connect
            (needs ``curve_secret_key``); ``None`` lets any client that knows the server key in.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        topic: bytes = DEFAULT_TOPIC,
        sndhwm: int = 2,
        curve_secret_key: bytes | None = None,
        curve_clients: str | Path | None = None,
    ) -> None:
        if sndhwm < 1:
            raise PublishError(f"the send high-water mark must be at least 1, got {sndhwm}")
        if curve_clients is not None and curve_secret_key is None:
            raise PublishError("a CurveZMQ client allow-list needs the server's secret key too")
        self.requested_endpoint = endpoint
        self.topic = topic
        self.sndhwm = sndhwm
        self.curve_secret_key = curve_secret_key
        self.curve_clients = Path(curve_clients).expanduser() if curve_clients is not None else None
        self._authenticator: Any = None
        self.sent = 0
        self.heartbeats = 0
        self.would_block = 0
        self.endpoint = ""

    def open(self) -> None:
        """Bind; a busy port or a bad endpoint raises :class:`PublishError` naming it."""
        zmq = import_zmq()
        clients = load_curve_clients(self.curve_clients) if self.curve_clients is not None else 0
        context = zmq.Context()
        if self.curve_clients is not None:
            self._authenticator = self._start_authenticator(context, self.curve_clients)
        socket = context.socket(zmq.PUB)
        try:
            socket.setsockopt(zmq.SNDHWM, self.sndhwm)
            socket.setsockopt(zmq.LINGER, _LINGER_MS)
            if self.curve_secret_key is not None:
                socket.curve_secretkey = self.curve_secret_key
                socket.curve_publickey = zmq.curve_public(self.curve_secret_key)
                socket.curve_server = True
            socket.bind(self.requested_endpoint)
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            self._stop_authenticator()
            context.term()
            if exc.errno == errno.EADDRINUSE:
                raise PublishError(
                    f"cannot publish on {self.requested_endpoint}: the address is already in use "
                    "(another crackseg run?); choose another with --bind"
                ) from None
            raise PublishError(f"cannot publish on {self.requested_endpoint}: {exc}") from None
        self._context, self._socket = context, socket
        self.endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        curve = " (CurveZMQ)" if self.curve_secret_key is not None else ""
        curve += f", {clients} authorized client key(s) from {self.curve_clients}" if clients else ""
        log.info("publishing masks on %s, topic %r%s", self.endpoint, self.topic.decode(errors="replace"), curve)
        if self.curve_secret_key is None and not is_loopback(self.requested_endpoint):
            log.warning(
                "publishing on %s without CurveZMQ: masks are sent in clear text to every network the vehicle is "
                "on; pass --curve-secret-key (and --curve-clients) for links beyond the vehicle",
                self.requested_endpoint,
            )

    @staticmethod
    def _start_authenticator(context: Any, clients: Path) -> Any:
        """A ZAP handler on ``context`` that admits CurveZMQ clients whose public key is in ``clients``."""
        from zmq.auth.thread import ThreadAuthenticator

        authenticator = ThreadAuthenticator(context, log=logging.getLogger(f"{__name__}.zap"))
        authenticator.start()
        authenticator.configure_curve(domain="*", location=str(clients))
        return authenticator

    def _stop_authenticator(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def close(self) -> None:
        """Close the socket, stop the authenticator, then end the context."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._stop_authenticator()
        super().close()

    def send(self, message: MaskMessage) -> None:
        """Encode and send without blocking; a full queue drops the message (subscribers see a ``seq`` gap)."""
        zmq = import_zmq()
        if self._socket is None:
            raise PublishError("ZmqPublisher.send() before open()")
        try:
            self._socket.send(self.topic + message.to_bytes(), zmq.NOBLOCK)
        except zmq.Again:
            self.would_block += 1
            return
        if message.mask is None:
            self.heartbeats += 1
        else:
            self.sent += 1

    def counters(self) -> dict[str, int]:
        return {"zmq_sent": self.sent, "zmq_heartbeats": self.heartbeats, "zmq_would_block": self.would_block}
