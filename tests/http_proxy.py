"""An HTTP proxy on loopback in front of a real S3 server, for tests of the obstore engine
(whose requests, sent from Rust, no Python hook can see): it records every request and can
answer one itself or drop it, by a rule the test gives.

Requests are forwarded byte for byte, the ``Host`` header included, so SigV4 signatures
made for the proxy's address still verify upstream.
"""
from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


@dataclass
class SeenRequest:
    method: str
    path: str
    """Unquoted, without the query: ``/bucket/key``."""
    query: str
    headers: dict[str, str] = field(default_factory=dict)
    """Names in lower case."""

    def key(self, bucket: str) -> str:
        return self.path[len(bucket) + 2 :] if self.path.startswith(f"/{bucket}/") else ""


Fault = tuple[int, bytes] | tuple[int, bytes, dict[str, str]] | str | None
"""What a rule returns: None forwards; (status, body[, headers]) answers instead; "drop" closes the
connection unanswered; "lost" forwards, then closes the connection instead of answering;
"ignore-conditions" forwards and turns a 412 answer into a 200, as a server that ignores
``If-None-Match`` / ``If-Match`` would answer (without writing anything); "corrupt" forwards the
request with one byte of its body changed (headers and signature untouched), as a faulty link would."""


class RecordingProxy:
    """``with RecordingProxy(upstream) as proxy:`` then point ``AWS_ENDPOINT_URL`` at ``proxy.url``."""

    live: dict[str, RecordingProxy] = {}

    def __init__(self, upstream: str, rule: Callable[[SeenRequest], Fault] | None = None) -> None:
        self.upstream = urlparse(upstream)
        self.rule = rule
        self.seen: list[SeenRequest] = []
        self.listeners: list[Callable[[SeenRequest], None]] = []
        self.faults: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        RecordingProxy.live[self.url] = self
        return self

    def __exit__(self, *exc) -> None:
        RecordingProxy.live.pop(self.url, None)
        self.server.shutdown()
        self.server.server_close()

    def requests(self, method: str | None = None) -> list[SeenRequest]:
        return [r for r in list(self.seen) if method is None or r.method == method]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(handler.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        seen = SeenRequest(handler.command, unquote(parsed.path), parsed.query, headers)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        self.seen.append(seen)
        for listener in self.listeners:
            listener(seen)
        fault = self.rule(seen) if self.rule else None
        if fault == "drop":
            self.faults.append("drop")
            handler.close_connection = True
            return
        if isinstance(fault, tuple):
            self.faults.append(str(fault[0]))
            status, text, *extra = fault
            handler.send_response(status)
            for name, value in (extra[0] if extra else {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            if handler.command != "HEAD":  # a HEAD answer has no body, whatever its length says
                handler.wfile.write(text)
            return
        if fault == "corrupt" and body:
            self.faults.append("corrupt")
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        status, headers, answer = self._forward(handler, body)
        if fault == "ignore-conditions" and status == 412:
            self.faults.append("ignored-412")
            status, headers, answer = 200, [("ETag", '"00000000000000000000000000000412"')], b""
        if fault == "lost":
            self.faults.append("lost")
            handler.close_connection = True
            return
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes):
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in ("connection", "proxy-connection", "keep-alive"):
                    connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def slow_down(status: int = 503) -> tuple[int, bytes]:
    """An S3-style error answer."""
    return status, f"<Error><Code>SlowDown</Code><Message>HTTP {status} from the test proxy</Message></Error>".encode()
