"""The health server on a real socket: idle and slow clients (slowloris) cost it no thread and do not
keep a probe from its answer; a flood of complete requests is shed with 503 at once; heads too large
are refused."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from shared.messaging.health import HealthServer, HealthServerLimits, serve_health
from tests.waiting import until

LIMITS = HealthServerLimits(workers=2, queue=2, max_connections=300, request_timeout=1.0, write_timeout=1.0)


@pytest.fixture
def start() -> Iterator[Callable[..., HealthServer]]:
    servers: list[HealthServer] = []

    def build(check=lambda: {"healthy": True}, limits: HealthServerLimits = LIMITS) -> HealthServer:
        servers.append(serve_health("127.0.0.1", 0, check, limits))
        return servers[-1]

    yield build
    for server in servers:
        server.shutdown()


def _get(server: HealthServer, path: str = "/health") -> tuple[int, bytes, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection(*server.server_address, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        conn.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


def _own_threads(server: HealthServer) -> list[threading.Thread]:
    return [t for t in server.threads if t.is_alive()]


def test_idle_and_slow_clients_do_not_keep_a_probe_from_its_answer(start):
    server = start()
    threads_before = threading.active_count()
    idle = [socket.create_connection(server.server_address) for _ in range(250)]

    # One slow client: a byte of a header that never ends, every 50 ms, until the server hangs up.
    slow = socket.create_connection(server.server_address)
    slow.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
    slow_ended = threading.Event()

    def trickle() -> None:
        try:
            while not slow_ended.wait(0.05):
                slow.send(b"a")
        except OSError:
            slow_ended.set()

    trickler = threading.Thread(target=trickle, name="slow-client")
    trickler.start()
    try:
        for _ in range(5):
            status, body, took = _get(server)
            assert status == 200 and b'"healthy": true' in body
            assert took < 0.5, f"a probe waited {took:.2f}s behind idle clients"
        assert _get(server, "/metrics")[0] == 200
        # No thread per connection: the accepting thread and the fixed workers, all the while.
        assert len(_own_threads(server)) == 1 + LIMITS.workers
        assert threading.active_count() <= threads_before + 1  # the test's own slow client

        until(lambda: all(_closed_by_server(s) for s in idle), timeout=10, what="idle clients closed")
        until(slow_ended.is_set, timeout=10, what="the slow client closed")
        assert server.timed_out >= len(idle) + 1
        assert _get(server)[0] == 200
    finally:
        slow_ended.set()
        trickler.join(5)
        for sock in [*idle, slow]:
            sock.close()


def test_beyond_the_workers_and_their_queue_requests_are_shed_at_once(start):
    release = threading.Event()
    in_check = threading.Semaphore(0)

    def slow_check() -> dict[str, object]:
        in_check.release()
        release.wait(10)
        return {"healthy": True}

    server = start(slow_check)
    request = b"GET /health HTTP/1.0\r\n\r\n"

    def send() -> socket.socket:
        sock = socket.create_connection(server.server_address, timeout=5)
        sock.sendall(request)
        return sock

    try:
        busy = [send() for _ in range(LIMITS.workers)]
        for _ in range(LIMITS.workers):
            assert in_check.acquire(timeout=5), "a worker took the request"
        queued = [send() for _ in range(LIMITS.queue)]
        started = time.monotonic()
        shed = [send() for _ in range(5)]
        for sock in shed:
            assert sock.recv(100).startswith(b"HTTP/1.0 503"), "shed, not queued"
        assert time.monotonic() - started < 1.0, "shed at once"
        assert len(_own_threads(server)) == 1 + LIMITS.workers
    finally:
        release.set()
    for sock in busy + queued:
        assert sock.recv(100).startswith(b"HTTP/1.0 200")
        sock.close()
    assert server.shed == 5


def test_heads_too_large_are_refused_and_a_failing_check_is_unhealthy(start):
    def failing() -> dict[str, object]:
        raise RuntimeError("cannot tell")

    server = start(failing)
    with socket.create_connection(server.server_address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\nX-Big: " + b"a" * (LIMITS.max_head + 1))
        assert sock.recv(100).startswith(b"HTTP/1.0 431")
    with socket.create_connection(server.server_address, timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n" + b"".join(b"X-%d: a\r\n" % n for n in range(101)) + b"\r\n")
        assert b" 431 " in sock.recv(100), "more headers than BaseHTTPRequestHandler allows"
    status, body, _ = _get(server)
    assert status == 503 and b"cannot tell" in body
