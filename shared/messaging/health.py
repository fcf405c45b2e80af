"""Per process: /metrics for Prometheus and /health for orchestrators, on one small HTTP server.

No client can stop it answering, however many connect and however slowly they talk. One thread
accepts connections and reads each request head without blocking (a connection that has not sent its
whole head within `request_timeout` is closed, and past `max_connections` the oldest waiting one is);
only a complete request goes to one of a fixed number of worker threads, and when they and their
short queue are busy it is answered 503 at once instead of waiting. A worker writes its response
within `write_timeout`. Idle and slow clients (slowloris) thus cost a file descriptor each for a
bounded time, never a thread, and a probe's GET /health is served while they wait.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import queue
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("shop.health")

HealthCheck = Callable[[], dict[str, object]]


@dataclass(frozen=True)
class HealthServerLimits:
    workers: int = 4  # concurrent handler threads: a check or a metrics scrape at a time each
    queue: int = 16  # complete requests waiting for a worker; any beyond get 503 at once
    max_connections: int = 256  # connections still sending their request head (file descriptors)
    request_timeout: float = 5.0  # to send the whole request head, from the connection's accept
    write_timeout: float = 5.0  # for each write of the response
    # The request line and headers together; BaseHTTPRequestHandler's own limits (65,536 bytes a
    # line, 100 headers) still apply within it.
    max_head: int = 65_536


_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
_TOO_LARGE = b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class HealthServer:
    """The server: `server_address` is where it listens; `shutdown()` stops it and its threads."""

    def __init__(
        self, host: str, port: int, check: HealthCheck, limits: HealthServerLimits | None = None
    ) -> None:
        self.limits = limits or HealthServerLimits()
        self._check = check
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.setblocking(False)
        self.server_address: tuple[str, int] = self._listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        # Connections still sending their head, oldest first: socket -> (deadline, bytes so far).
        self._pending: OrderedDict[socket.socket, tuple[float, bytearray]] = OrderedDict()
        self._requests: queue.Queue[tuple[socket.socket, bytes] | None] = queue.Queue(self.limits.queue)
        self._stop = threading.Event()
        # What it turned away, for tests and troubleshooting.
        self.timed_out = 0
        self.evicted = 0
        self.shed = 0
        self._threads = [threading.Thread(target=self._accept_and_read, name="health", daemon=True)] + [
            threading.Thread(target=self._work, name=f"health-worker-{n}", daemon=True)
            for n in range(self.limits.workers)
        ]

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """Every thread it runs: the accepting one and the workers, never more."""
        return tuple(self._threads)

    def start(self) -> HealthServer:
        for thread in self._threads:
            thread.start()
        return self

    def shutdown(self) -> None:
        self._stop.set()
        for _ in self._threads[1:]:
            try:
                self._requests.put(None, timeout=1)
            except queue.Full:
                break  # workers busy: daemon threads, they go with the process
        for thread in self._threads:
            thread.join(timeout=2)
        for conn in list(self._pending):
            self._close(conn)
        self._selector.close()
        self._listener.close()

    # -- the accepting thread: never blocks on a client ---------------------------------------------

    def _accept_and_read(self) -> None:
        while not self._stop.is_set():
            try:
                self._expire(time.monotonic())
                wait = 0.5
                if self._pending:
                    first_deadline = next(iter(self._pending.values()))[0]
                    wait = min(wait, max(0.0, first_deadline - time.monotonic()))
                for key, _ in self._selector.select(wait):
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
            except Exception:
                log.exception("health server loop error")  # keep serving; nothing here is fatal

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of file descriptors: free the oldest waiting connection
                log.warning("health server cannot accept: %s", exc)
                if not self._pending:
                    return
                self._evict_oldest()
                continue
            conn.setblocking(False)
            if len(self._pending) >= self.limits.max_connections:
                self._evict_oldest()  # the one most likely idle on purpose
            self._pending[conn] = (time.monotonic() + self.limits.request_timeout, bytearray())
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return
        head = self._pending[conn][1]
        head += chunk
        if b"\r\n\r\n" not in head and b"\n\n" not in head:
            if len(head) > self.limits.max_head:
                self._answer_and_close(conn, _TOO_LARGE)
            return
        self._selector.unregister(conn)
        del self._pending[conn]
        try:
            self._requests.put_nowait((conn, bytes(head)))
        except queue.Full:
            self.shed += 1
            self._answer_and_close(conn, _BUSY, registered=False)

    def _expire(self, now: float) -> None:
        # Every connection has the same timeout, so the oldest is first to expire.
        while self._pending and next(iter(self._pending.values()))[0] <= now:
            self.timed_out += 1
            self._close(next(iter(self._pending)))

    def _evict_oldest(self) -> None:
        self.evicted += 1
        self._close(next(iter(self._pending)))

    def _answer_and_close(self, conn: socket.socket, answer: bytes, registered: bool = True) -> None:
        with contextlib.suppress(OSError):  # best effort
            conn.send(answer)  # a few bytes into an empty send buffer: never blocks
        if registered:
            self._close(conn)
        else:
            conn.close()

    def _close(self, conn: socket.socket) -> None:
        self._pending.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):  # not registered (any more)
            self._selector.unregister(conn)
        conn.close()

    # -- workers: a complete request each -----------------------------------------------------------

    def _work(self) -> None:
        while (item := self._requests.get()) is not None:
            conn, head = item
            try:
                conn.setblocking(True)
                conn.settimeout(self.limits.write_timeout)
                _Handler(head, self._check, conn)
            except Exception as exc:  # a client gone or too slow to read: its loss only
                log.debug("health request failed: %r", exc)
            finally:
                conn.close()


class _Handler(BaseHTTPRequestHandler):
    """One request, parsed from the head the accepting thread read; HTTP/1.0: one per connection."""

    def __init__(self, head: bytes, check: HealthCheck, conn: socket.socket) -> None:
        self._head = head
        self._check = check
        super().__init__(conn, ("", 0), None)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._head)
        self.wfile = self.connection.makefile("wb")

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body, status, kind = generate_latest(), 200, CONTENT_TYPE_LATEST
        elif self.path in ("/health", "/healthz"):
            try:
                report = self._check()
            except Exception as exc:  # a check that cannot tell is an unhealthy answer, not none
                report = {"healthy": False, "error": repr(exc)}
            body = json.dumps(report, default=str).encode()
            status, kind = (200 if report.get("healthy") else 503), "application/json"
        else:
            body, status, kind = b"not found\n", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # probes every few seconds would drown the service's own logs


def serve_health(
    host: str, port: int, check: HealthCheck, limits: HealthServerLimits | None = None
) -> HealthServer:
    """Start serving in daemon threads. `check` returns a dict with at least {"healthy": bool}."""
    return HealthServer(host, port, check, limits).start()
