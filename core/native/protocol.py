"""The wire format between Tunesmith and its llama.cpp child: length-prefixed pickled messages.

Each message is a 4-byte marker, an 8-byte big-endian length and that many bytes of pickle.  The
marker makes stray bytes on the pipe (a C library printing to what it thinks is stdout) an error
that says so, instead of a pickle that fails somewhere in the middle.  Both ends are Tunesmith of
the same installation, so pickle is safe here; nothing else ever writes to these pipes.
Knows pipes and pickle; nothing about llama.cpp.
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

MARKER = b"TSLH"
_HEADER = struct.Struct(">4sQ")


class ProtocolError(RuntimeError):
    """The other end wrote something that is not a message of ours."""


class PeerGone(EOFError):
    """The other end closed its pipe: the process has exited or is exiting."""


def send(stream: IO[bytes], message: Any) -> None:
    """Write one message and flush it (raises BrokenPipeError when the reader is gone)."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(MARKER, len(body)) + body)
    stream.flush()


def receive(stream: IO[bytes]) -> Any:
    """Read one message; PeerGone when the pipe ends before or inside it."""
    header = _read_exactly(stream, _HEADER.size)
    marker, length = _HEADER.unpack(header)
    if marker != MARKER:
        raise ProtocolError(f"unexpected bytes on the pipe: {header!r}")
    return pickle.loads(_read_exactly(stream, length))


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            raise PeerGone("the pipe was closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
