"""Per process: /metrics for Prometheus and /health for orchestrators, on one small HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthCheck = Callable[[], dict[str, object]]


def serve_health(host: str, port: int, check: HealthCheck) -> ThreadingHTTPServer:
    """Start serving in a daemon thread. `check` returns a dict with at least {"healthy": bool}."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, status, kind = generate_latest(), 200, CONTENT_TYPE_LATEST
            elif self.path in ("/health", "/healthz"):
                report = check()
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

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
