"""What a new user sees when the store is not where they think: fast, one-line, actionable errors."""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import registry
from backends.s3 import S3Backend, _make_client
from servers import pick_ports
from store_fixtures import FAKE_CREDENTIALS

CLI = [sys.executable, "-m", "registry.cli"]


def _dead_port() -> int:
    """A loopback port where nothing listens."""
    port = pick_ports(1, grpc=False)[0]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def _s3_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


def test_a_dead_endpoint_fails_within_two_seconds_saying_what_to_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _s3_env(monkeypatch, f"http://127.0.0.1:{_dead_port()}")
    started = time.monotonic()
    with pytest.raises(registry.StorageError, match=r"nothing answers at http://127\.0\.0\.1:\d+ .*AWS_ENDPOINT_URL"):
        registry.Api("s3://bucket/p").artifact("proj/model:best")
    assert time.monotonic() - started < 2.0  # eight retries with backoff took 3.5-10.7 s

    import os

    cli = subprocess.run([*CLI, "--url", "s3://bucket/p", "ls"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "REGISTRY_CACHE_DIR": str(tmp_path / "c")})
    assert cli.returncode == 5 and cli.stderr.count("\n") == 1 and "nothing answers at" in cli.stderr


def test_an_unresolvable_host_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _s3_env(monkeypatch, "http://no-such-host.invalid:9000")
    started = time.monotonic()
    with pytest.raises(registry.StorageError, match="nothing answers at http://no-such-host.invalid:9000"):
        registry.Api("s3://bucket").projects()
    assert time.monotonic() - started < 2.0


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then 404 (an S3 "no such key")."""

    failures = 3
    seen = 0

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen += 1
        self.send_response(503 if type(self).seen <= type(self).failures else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_retries_against_a_server_that_answered_are_announced(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    port = pick_ports(1, grpc=False)[0]
    server = ThreadingHTTPServer(("127.0.0.1", port), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _s3_env(monkeypatch, f"http://127.0.0.1:{port}")
        backend = S3Backend("bucket", client=_make_client())
        with caplog.at_level(logging.WARNING, logger="registry"):
            assert backend.exists("some/key") is False  # retried through the 503s, then answered
        waiting = [r.getMessage() for r in caplog.records if "waiting for the S3 server" in r.getMessage()]
        assert len(waiting) == 1 and f"127.0.0.1:{port}" in waiting[0] and "HTTP 503" in waiting[0]
        assert _Flaky.seen == 4 and backend.answered
    finally:
        server.shutdown()
        server.server_close()


def test_a_quick_retry_is_silent(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    port = pick_ports(1, grpc=False)[0]
    handler = type("OnceFlaky", (_Flaky,), {"failures": 1, "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _s3_env(monkeypatch, f"http://127.0.0.1:{port}")
        backend = S3Backend("bucket", client=_make_client())
        with caplog.at_level(logging.WARNING, logger="registry"):
            assert backend.exists("k") is False
        assert handler.seen == 2 and not [r for r in caplog.records if "waiting" in r.getMessage()]
    finally:
        server.shutdown()
        server.server_close()
