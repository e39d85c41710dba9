"""The stdio reader: `Content-Length` frames in, decoded JSON values out, whatever the client sends.

pygls's reader loop (`pygls.io_.run_async`) offers no hook for what a hostile or broken client
needs, so the loop is ours: it allocates whatever length a header claims (a MemoryError on
`Content-Length: 99999999999`), never finds its way back after a frame whose length is wrong
(every later body is glued to the next header), and decodes with an `object_hook` that runs on
every nested object, so a command argument shaped like a JSON-RPC message is structured (and
answered) as one. Here lengths are capped, a bad frame is skipped up to the next
`Content-Length` header, and JSON is decoded plainly; only `GantryProtocol.handle_json` turns the
top-level value into a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import select
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import attrs

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger("gantry.framing")

MAX_BODY = 64 * 1024 * 1024
"""The largest body accepted; a longer frame is refused before anything is allocated for it."""
_MAX_HEADER = 4096
_CHUNK = 65536
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"content-length:", re.IGNORECASE)
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110)


@attrs.frozen
class ParseError:
    """A frame that was read but cannot be a message: answered with -32700."""

    reason: str


def _content_length(block: bytes) -> int | None:
    """The length a header block announces, or None when it is not a well-formed block."""
    length = None
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            return None
        if name.lower() == b"content-length":
            if length is not None or not value.strip().isdigit():
                return None
            length = int(value)
    return length


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")  # echoed back, it would break the client's reader


class FrameReader:
    """Messages from a blocking `read(n)`; whatever cannot be one becomes a ParseError."""

    def __init__(self, read: Callable[[int], bytes], max_body: int = MAX_BODY) -> None:
        self._read = read
        self._max_body = max_body
        self._buf = bytearray()

    def messages(self) -> Iterator[object]:
        """Each frame's decoded JSON value (or a ParseError), until the input ends."""
        while (body := self._next_body()) is not None:
            if isinstance(body, ParseError):
                yield body
                continue
            try:
                yield json.loads(body.decode("utf-8"), parse_constant=_not_json)
            except RecursionError:
                yield ParseError("nested too deeply")
            except ValueError as exc:  # not JSON, not UTF-8
                # A Content-Length too long swallowed the next frame's header: read on from it.
                if match := _CONTENT_LENGTH.search(body):
                    self._buf[:0] = body[match.start() :]
                yield ParseError(f"not a JSON message: {exc}")

    def _fill(self) -> bool:
        chunk = self._read(_CHUNK)
        self._buf += chunk
        return bool(chunk)

    def _header_end(self) -> int | None:
        """Where the header block at the front ends: -1 when it runs longer than headers may,
        None when the input ends first."""
        while (end := self._buf.find(_HEADER_END, 0, _MAX_HEADER)) < 0:
            if len(self._buf) >= _MAX_HEADER:
                return -1
            if not self._fill():
                return None
        return end

    def _next_body(self) -> bytes | ParseError | None:
        while True:
            if (end := self._header_end()) is None:
                return None
            length = _content_length(bytes(self._buf[:end])) if end >= 0 else None
            if length is not None:
                break
            # Not a header: what is left of a frame whose length was wrong, or noise.
            if (skipped := self._skip_to_next_header()) is None:
                return None
            log.warning("skipped %d bytes that were not a frame", skipped)
        if length > self._max_body:
            log.warning("refusing a frame of %d bytes", length)
            problem = f"a body of {length} bytes is over the limit of {self._max_body}"
            return None if self._skip_to_next_header() is None else ParseError(problem)
        del self._buf[: end + len(_HEADER_END)]
        while len(self._buf) < length:
            if not self._fill():
                return None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    def _skip_to_next_header(self) -> int | None:
        """Drop the front up to the next `Content-Length` header: how many bytes, None at the end."""
        skipped = 1
        del self._buf[:1]
        while (match := _CONTENT_LENGTH.search(self._buf)) is None:
            keep = len(b"content-length:") - 1  # the start of a header split across reads
            skipped += max(len(self._buf) - keep, 0)
            del self._buf[:-keep]
            if not self._fill():
                return None
        skipped += match.start()
        del self._buf[: match.start()]
        return skipped


_END = object()


class FrameWriter:
    """Writes each frame whole, from any thread: a write the descriptor takes only in part (a
    full pipe on a non-blocking descriptor, an interrupted call) is finished before the next
    frame starts, so a frame is never left half-sent with another one after it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:
                    select.select([], [self._fd], [])

    def close(self) -> None:
        """The descriptor is stdout's: the process closes it."""


async def _dispatch(reader: FrameReader, server: LanguageServer) -> None:
    """Hand each message to the protocol on the event loop; reading blocks in a thread.

    The thread is a daemon reading the raw descriptor, so one still blocked in `read` neither
    holds up the process's exit nor holds the lock of a buffered stdin at interpreter shutdown.
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=1)  # no reading ahead of the loop

    def put(message: object) -> None:
        asyncio.run_coroutine_threadsafe(inbox.put(message), loop).result()

    def pump() -> None:
        try:
            for message in reader.messages():
                put(message)
        finally:  # the loop must not wait forever on a reader that failed
            put(_END)

    threading.Thread(target=pump, name="lsp-reader", daemon=True).start()
    while (message := await inbox.get()) is not _END:
        server.protocol.handle_json(message)


def start_io(server: LanguageServer, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve one client on stdio until its input ends; `exit` raises SystemExit out of here."""
    stdout.flush()
    server.protocol.set_writer(FrameWriter(stdout.fileno()))
    reader = FrameReader(lambda n: os.read(stdin.fileno(), n))
    try:
        asyncio.run(_dispatch(reader, server))
    except BrokenPipeError:
        log.error("the client's end of stdout is closed; stopping")
    finally:
        server.shutdown()
