"""A loopback HTTP server on an OS-chosen port, standing in for `tether serve` in the
connectors' webhook tests; and HookSecrets for trackers that hand over none."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

Answer = Callable[[dict[str, str], dict[str, str], bytes], tuple[int, dict[str, str]]]


class Loopback:
    """Every POST to it goes to ``answer(query, headers, raw body)``, which gives the status
    and any headers to answer with."""

    def __init__(self, path: str, answer: Answer):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = dict(parse_qsl(urlsplit(self.path).query))
                status, extra = answer(query, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # the tests' output stays theirs

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.02})
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    """Records each POST's headers and raw body, answers 200."""

    def __init__(self, path: str) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.server = Loopback(path, self._answer)
        self.url = self.server.url

    def _answer(self, query: dict[str, str], headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str]]:
        self.got.append((headers, body))
        return 200, {}

    def stop(self) -> None:
        self.server.stop()


class NoSecrets:
    """GitHub and Jira hand over no secrets of their own (that is Asana's handshake)."""

    def get(self, hook: str) -> str | None:
        return None

    def put(self, hook: str, secret: str) -> None:
        raise AssertionError("these deliveries store no secret")

    def expected(self) -> bool:
        return False
