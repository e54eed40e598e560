"""A small HTTP fault proxy on 127.0.0.1, between an application and the real server.

It speaks just enough HTTP/1.1 (keep-alive, ``Content-Length`` bodies) for the
exporter's POSTs. Each events request takes the next :class:`Action` of the plan (then
the default action) and is recorded: when it arrived, what was done, the span ids in
its body and, when the server answered, the server's ``accepted_spans`` /
``duplicate_spans`` counts, so a test can tell a re-sent body from a stored duplicate.

Actions:

* ``forward()``: to the server, the answer relayed;
* ``reply(code, headers)``: answered by the proxy, nothing forwarded (503 bursts, 429);
* ``delay_drop(s)``: nothing answered for ``s`` seconds, then the connection closed,
  nothing forwarded (a response slower than the client's timeout);
* ``delay_forward(s)``: forwarded after ``s`` seconds (stored late, answered late);
* ``lose()``: forwarded, the server's answer read, then the client connection closed
  without an answer ("stored but answer lost");
* ``hold()``: forwarded, the answer withheld until the client goes away.

:meth:`FaultProxy.refuse` closes the listening socket (and every open connection) for a
while, so connections are refused, then listens again on the same port. A server that
does not answer is passed on as a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Action", "FaultProxy", "Record"]


@dataclass(frozen=True)
class Action:
    kind: str
    seconds: float = 0.0
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def forward() -> Action:
        return Action("forward")

    @staticmethod
    def reply(code: int, headers: Iterable[tuple[str, str]] = ()) -> Action:
        return Action("status", status=code, headers=tuple(headers))

    @staticmethod
    def delay_drop(seconds: float) -> Action:
        return Action("delay_drop", seconds=seconds)

    @staticmethod
    def delay_forward(seconds: float) -> Action:
        return Action("delay_forward", seconds=seconds)

    @staticmethod
    def lose() -> Action:
        return Action("lose")

    @staticmethod
    def hold() -> Action:
        return Action("hold")


@dataclass
class Record:
    """One request the proxy received."""

    at: float
    method: str
    path: str
    action: str
    span_ids: list[str] = field(default_factory=list)
    metrics: int = 0
    upstream_status: int | None = None
    accepted_spans: int | None = None
    duplicate_spans: int | None = None
    answered: int | None = None  # status sent to the client, None: no answer


class _Closed(Exception):
    pass


class FaultProxy:
    """``with FaultProxy(upstream_port) as proxy: ...``; ``proxy.url`` is its base URL."""

    def __init__(self, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.records: list[Record] = []
        self.default = Action.forward()
        self._plan: list[Action] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._cancel_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def plan(self, *actions: Action, default: Action | None = None) -> None:
        """The next events requests take ``actions`` in order, then ``default``."""
        with self._lock:
            self._plan = list(actions)
            if default is not None:
                self.default = default

    def set_upstream(self, port: int) -> None:
        self.upstream_port = port

    def refuse(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (in the background), then listen again."""
        self._call(self._close_all())

        def reopen() -> None:
            time.sleep(seconds)
            self._call(self._listen())

        threading.Thread(target=reopen, daemon=True, name="fault-proxy-reopen").start()

    def refusing(self) -> None:
        """Stop listening until :meth:`listen` is called."""
        self._call(self._close_all())

    def listen(self) -> None:
        self._call(self._listen())

    def events(self) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.method == "POST"]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.events()):
                return True
            time.sleep(0.05)
        return bool(predicate(self.events()))

    def summary(self) -> dict[str, int]:
        """Counts over every events request: sent (span copies), accepted, duplicates."""
        events = self.events()
        return {
            "requests": len(events),
            "span_copies_sent": sum(len(r.span_ids) for r in events),
            "accepted": sum(r.accepted_spans or 0 for r in events),
            "duplicates_reported": sum(r.duplicate_spans or 0 for r in events),
        }

    # ------------------------------------------------------------------ internals

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True, backlog=128)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cancel_tasks(self) -> None:
        await self._close_all()
        self._stopping.set()  # held and delayed requests end; aborted reads fail
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _close_all(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short when the proxy stops."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _next_action(self) -> Action:
        with self._lock:
            return self._plan.pop(0) if self._plan else self.default

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_message(reader, request=True)
                if request is None:
                    return
                if not await self._serve(request, writer):
                    return
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            _abort(writer)

    async def _serve(self, request: _Message, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; ``False`` when the client connection must be closed."""
        action = self._next_action() if request.method == "POST" else Action.forward()
        record = Record(time.monotonic(), request.method, request.target, action.kind)
        if request.method == "POST":
            record.span_ids, record.metrics = _spans_of(request)
        with self._lock:
            self.records.append(record)
        if action.kind == "status":
            body = json.dumps({"errors": [{"status": str(action.status),
                                           "title": "fault proxy"}]}).encode()
            record.answered = action.status
            await _write_response(writer, action.status, list(action.headers), body)
            return True
        if action.kind == "delay_drop":
            await self._sleep(action.seconds)
            return False
        if action.kind == "delay_forward":
            await self._sleep(action.seconds)
        answer = await self._forward(request)
        if answer is None:  # the server is gone: so is the connection
            return False
        record.upstream_status = answer.status
        _count_answer(record, answer)
        if action.kind == "lose":
            return False
        if action.kind == "hold":
            await self._sleep(3600)
            return False
        record.answered = answer.status
        await _write_response(writer, answer.status, answer.headers, answer.body)
        return True

    async def _forward(self, request: _Message) -> _Message | None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            return None
        try:
            head = [f"{request.method} {request.target} HTTP/1.1"]
            for name, value in request.headers:
                if name.lower() not in ("connection", "keep-alive", "host", "content-length"):
                    head.append(f"{name}: {value}")
            head += [f"Host: 127.0.0.1:{self.upstream_port}", "Connection: close",
                     f"Content-Length: {len(request.body)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body)
            await writer.drain()
            return await _read_message(reader, request=False)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, _Closed):
            return None
        finally:
            _abort(writer)


@dataclass
class _Message:
    method: str
    target: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


async def _read_message(reader: asyncio.StreamReader, *, request: bool) -> _Message | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise _Closed() from exc
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
    message = _Message("", "", 0, headers, b"")
    if request:
        message.method, message.target = first[0], first[1]
    else:
        message.status = int(first[1])
    length = message.header("content-length")
    if length is not None:
        message.body = await reader.readexactly(int(length))
    elif (message.header("transfer-encoding") or "").lower() == "chunked":
        message.body = await _read_chunked(reader)
    elif not request:
        message.body = await reader.read()  # Connection: close
    return message


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def _write_response(writer: asyncio.StreamWriter, status: int,
                          headers: list[tuple[str, str]], body: bytes) -> None:
    head = [f"HTTP/1.1 {status} Fault-Proxy"]
    for name, value in headers:
        if name.lower() not in ("connection", "keep-alive", "content-length",
                                "transfer-encoding", "content-encoding"):
            head.append(f"{name}: {value}")
    if not any(name.lower() == "content-type" for name, _ in headers):
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        sock = writer.get_extra_info("socket")
        if sock is not None:  # RST, not a graceful FIN: the peer sees a reset connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()


def _spans_of(request: _Message) -> tuple[list[str], int]:
    body = request.body
    try:
        if (request.header("content-encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        attrs = json.loads(body)["data"]["attributes"]
        return [s["span_id"] for s in attrs.get("spans", [])], len(attrs.get("metrics", []))
    except Exception:
        return [], 0


def _count_answer(record: Record, answer: _Message) -> None:
    try:
        attrs = json.loads(answer.body)["data"]["attributes"]
        record.accepted_spans = int(attrs["accepted_spans"])
        record.duplicate_spans = int(attrs["duplicate_spans"])
    except Exception:
        pass
