"""The emulator's HTTP side: a threading server on loopback and its request handler."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from channels.emulator.coupons import PREFIX as COUPONS

if TYPE_CHECKING:
    from channels.emulator.core import WeComEmulator

logger = logging.getLogger(__name__)
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server that hands every request to its `WeComEmulator`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: WeComEmulator):
        super().__init__(address, _Handler)
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Shut open keep-alive connections so no handler keeps serving after stop()."""
        with self.connections_lock:
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.connections.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug(
            "emulator connection from %s ended with an error", client_address, exc_info=True
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator = self.server.emulator
        if parts.path.startswith(COUPONS):  # the chain's coupon system checks signed headers
            answer = emulator.coupons.handle(method, parts.path, dict(self.headers), body)
        else:
            answer = emulator.handle(method, parts.path, query, body)
        if answer is None:
            self.close_connection = True  # the work is done; the caller gets no answer
            return
        status, payload = answer
        if isinstance(payload, str):  # the sent-messages page
            data, kind = payload.encode("utf-8"), "text/html; charset=utf-8"
        else:
            # orjson: a 100-contact directory page encodes ~15x faster than with json
            data = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
            kind = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if isinstance(payload, str):  # no scripts, no network: inline styles only
            self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Log the method and path only: query strings carry tokens and secrets."""
        logger.debug("emulator: %s %s", self.command, urlsplit(self.path).path)
