"""A downstream service on loopback that answers, stalls or breaks on purpose.

For tests of a client through its real transport: a mock transport never opens a socket,
so it cannot show a timeout, a reset, a pooled connection or an idle one being closed.
:class:`Peer` is a small HTTP/1.1 server on ``127.0.0.1`` (asyncio streams). It records
each request's method, target and headers and each connection's life, and answers as its
``behaviour`` says:

- ``"json"``: 200 with a small JSON body, keeping the connection open (keep-alive);
- ``"slow"``: the same after ``delay`` seconds;
- ``"silent"``: reads the request and never answers;
- ``"reset"``: reads the request and aborts the connection (a TCP RST);
- ``"hang-up"``: reads the request and closes the connection cleanly, with no answer;
- ``"garbage"``: answers bytes that are not HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

Behaviour = Literal["json", "slow", "silent", "reset", "hang-up", "garbage"]
BODY = b'{"id": 7}'


@dataclass
class Seen:
    """One request as the peer read it; header names in lower case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    behaviour: Behaviour = "json"
    delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)
    opened: int = 0
    """Connections accepted so far."""
    most_open: int = 0
    """The most connections open at one time."""
    closed_by_client: list[float] = field(default_factory=list)
    """``time.monotonic()`` of each connection the client ended (EOF while idle)."""
    url: str = ""
    """``http://127.0.0.1:<port>``, once the peer is listening."""
    _open: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:  # a silent peer's handlers wait for ever
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.opened += 1
        self._open += 1
        self.most_open = max(self.most_open, self._open)
        try:
            while (seen := await _read_request(reader)) is not None:
                self.requests.append(seen)
                if not await self._answer(writer):
                    return
            self.closed_by_client.append(time.monotonic())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open -= 1
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter) -> bool:
        """Answer one request as ``behaviour`` says; ``False`` once the connection is over."""
        if self.behaviour == "silent":
            await asyncio.Event().wait()  # until the peer is shut (the task is cancelled)
        if self.behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if self.behaviour == "hang-up":
            return False
        if self.behaviour == "garbage":
            writer.write(b"this is not HTTP\r\n\r\n")
            await writer.drain()
            return False
        if self.behaviour == "slow":
            await asyncio.sleep(self.delay)
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(BODY)}\r\n\r\n"
        )
        writer.write(head.encode() + BODY)
        await writer.drain()
        return True


async def _read_request(reader: asyncio.StreamReader) -> Seen | None:
    """One request's head and body; ``None`` when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    start, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = start.split(" ", 2)
    headers = {}
    for line in filter(None, lines):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return Seen(method, target, headers, body)


def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
