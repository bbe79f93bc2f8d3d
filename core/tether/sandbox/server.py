"""A threaded HTTP server on loopback that serves one SandboxApi, logging every request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tether.sandbox.api import Request, Response, SandboxApi, json_response
from tether.sandbox.faults import FaultPlan


@dataclass(frozen=True)
class LoggedRequest:
    number: int
    method: str
    path: str  # without the query string
    query: str
    status: int  # 0 for a connection reset


class SandboxServer:
    """Serves ``api`` on 127.0.0.1 at a port the OS picks; use as a context manager."""

    def __init__(self, api: SandboxApi):
        self.api = api
        self.faults = FaultPlan()
        self.log: list[LoggedRequest] = []
        # Called with each request once the API has handled it, before the answer is sent;
        # True drops the connection instead of answering: the write landed, its response is
        # lost (what a crash or a network cut looks like to the client).
        self.after_handling: Callable[[LoggedRequest], bool | None] | None = None
        self._lock = threading.Lock()  # one request at a time touches the API's state
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address is (host text, port)
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        # A short poll keeps stop() quick (the default 0.5 s made every test wait).
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.02},
                                        name=f"sandbox-{self.api.name}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, method: str | None = None, path: str = "") -> int:
        """How many logged requests match ``method`` (any if None) and the path prefix."""
        return sum(1 for r in self.log if (method is None or r.method == method)
                   and r.path.startswith(path))

    def _handle(self, method: str, target: str, headers, body: bytes, conn: socket.socket
                ) -> Response | None:
        with self._lock:
            number = len(self.log) + 1
            self.log.append(LoggedRequest(number, method, target.partition("?")[0],
                                          target.partition("?")[2], -1))
        path = target.partition("?")[0]
        response: Response | None = None
        for fault in self.faults.pick(number, path):
            if fault.kind == "latency":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                response = None
                break
            else:
                response = json_response(fault.status, fault.body, dict(fault.headers))
                break
        else:
            req = Request.parse(method, target, headers, body, self.base_url)
            with self._lock:
                try:
                    response = self.api.dispatch(req)
                except ValueError:
                    response = json_response(400, {"message": "Problems parsing JSON"})
                self.api.decorate(req, response)
        with self._lock:
            status = response.status if response else 0
            logged = self.log[number - 1] = LoggedRequest(number, method, path,
                                                          target.partition("?")[2], status)
        if self.after_handling is not None and self.after_handling(logged):
            return None
        return response

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle and delayed ACKs each
            # kept-alive response would wait ~40 ms.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = server._handle(self.command, self.path, self.headers, body,
                                          self.connection)
                if response is None:  # injected reset: drop the connection, answer nothing
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = response.encode()
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def date_time_string(self, timestamp: float | None = None) -> str:
                # The Date header from the API's clock (a fake one in tests), not this
                # machine's: connectors date their pulls by it.
                now = server.api.now()
                if timestamp is None and now is not None:
                    timestamp = now.timestamp()
                return super().date_time_string(timestamp)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the request log replaces stderr noise

        return Handler
