"""What a new user sees when the store is not where they think: fast, one-line, actionable errors."""
from __future__ import annotations

import json
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
from backends import open_backend
from servers import pick_ports
from store_fixtures import FAKE_CREDENTIALS, record_requests
from stored_bytes import file_byte_keys

ENGINES = ["obstore", "botocore"]

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


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dead_endpoint_fails_within_two_seconds_saying_what_to_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: str
) -> None:
    _s3_env(monkeypatch, f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("REGISTRY_S3_ENGINE", engine)
    started = time.monotonic()
    with pytest.raises(registry.StorageError, match=r"nothing answers at http://127\.0\.0\.1:\d+ .*AWS_ENDPOINT_URL"):
        registry.Api("s3://bucket/p").artifact("proj/model:best")
    assert time.monotonic() - started < 2.0  # eight retries with backoff took 3.5-10.7 s

    import os

    cli = subprocess.run([*CLI, "--url", "s3://bucket/p", "ls"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "REGISTRY_CACHE_DIR": str(tmp_path / "c")})
    assert cli.returncode == 5 and cli.stderr.count("\n") == 1 and "nothing answers at" in cli.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unresolvable_host_fails_at_once(monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    _s3_env(monkeypatch, "http://no-such-host.invalid:9000")
    monkeypatch.setenv("REGISTRY_S3_ENGINE", engine)
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


@pytest.mark.parametrize("engine", ENGINES)
def test_retries_against_a_server_that_answered_are_announced(monkeypatch: pytest.MonkeyPatch, caplog, engine: str) -> None:
    port = pick_ports(1, grpc=False)[0]
    handler = type("Flaky", (_Flaky,), {"seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _s3_env(monkeypatch, f"http://127.0.0.1:{port}")
        monkeypatch.setenv("REGISTRY_S3_ENGINE", engine)
        backend = open_backend("s3://bucket")
        with caplog.at_level(logging.WARNING, logger="registry"):
            assert backend.exists("some/key") is False  # retried through the 503s, then answered
        waiting = [r.getMessage() for r in caplog.records if "waiting for the S3 server" in r.getMessage()]
        assert len(waiting) == 1 and f"127.0.0.1:{port}" in waiting[0] and "HTTP 503" in waiting[0]
        assert handler.seen == 4 and backend.answered
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quick_retry_is_silent(monkeypatch: pytest.MonkeyPatch, caplog, engine: str) -> None:
    port = pick_ports(1, grpc=False)[0]
    handler = type("OnceFlaky", (_Flaky,), {"failures": 1, "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _s3_env(monkeypatch, f"http://127.0.0.1:{port}")
        monkeypatch.setenv("REGISTRY_S3_ENGINE", engine)
        backend = open_backend("s3://bucket")
        with caplog.at_level(logging.WARNING, logger="registry"):
            assert backend.exists("k") is False
        assert handler.seen == 2 and not [r for r in caplog.records if "waiting" in r.getMessage()]
    finally:
        server.shutdown()
        server.server_close()


# -- the CLI as a new user meets it -----------------------------------------------------------
def _cli(tmp_path: Path, *args: str, code: int = 0, store: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AWS_"))}
    env.update(REGISTRY_CACHE_DIR=str(tmp_path / "cache"), REGISTRY_URL=str(store or tmp_path / "store"))
    proc = subprocess.run([*CLI, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "data"
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    return root


def test_an_unchanged_relog_says_so_once(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": "A"})
    _cli(tmp_path, "push", "data", "demo/set", "--type", "dataset")
    again = _cli(tmp_path, "push", "data", "demo/set", "--type", "dataset")
    assert (again.stdout + again.stderr).count("already holds these contents") == 1


def test_a_typo_in_the_store_url_is_not_an_empty_store(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": "A"})
    _cli(tmp_path, "push", "data", "demo/set", "--type", "dataset")  # writing creates the store
    typo = tmp_path / "stroe"
    for args in (["ls"], ["ls", "demo"], ["show", "demo/set"], ["pull", "demo/set"], ["runs", "demo"]):
        failed = _cli(tmp_path, *args, code=5, store=typo)
        assert failed.stderr == f"registry: error: no store at {typo}: the directory does not exist; check REGISTRY_URL or --url (logging an artifact creates it)\n"
    assert not typo.exists()  # reading created nothing
    assert _cli(tmp_path, "ls").stdout.split() == ["demo"]
    with pytest.raises(registry.StorageError, match="no store at"):
        registry.Api(str(typo)).artifact("demo/set")


def test_not_found_errors_suggest_close_names_and_a_command_that_works(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": "A"})
    _cli(tmp_path, "push", "data", "demo/trained-model", "--type", "model")
    missing = _cli(tmp_path, "show", "demo/trained-modle:best", code=1)
    assert "did you mean trained-model?" in missing.stderr and "`registry ls demo`" in missing.stderr
    assert "trained-model" in _cli(tmp_path, "ls", "demo").stdout  # the suggested command works
    project = _cli(tmp_path, "ls", "dmeo", code=1)
    assert "did you mean demo?" in project.stderr and "`registry ls`" in project.stderr
    versions = _cli(tmp_path, "ls", "demo/trained-modl", code=1)
    assert "did you mean trained-model?" in versions.stderr


def test_pull_after_push_on_the_same_machine_moves_nothing(tmp_path: Path) -> None:
    files = {f"part{i}.bin": "x" * (1000 + i) for i in range(5)}
    _tree(tmp_path, files)
    _cli(tmp_path, "push", "data", "demo/set", "--type", "dataset")
    pulled = json.loads(_cli(tmp_path, "--json", "pull", "demo/set", "-d", "copy").stdout)
    assert pulled["fetched_bytes"] == 0 and pulled["local_bytes"] == sum(len(b) for b in files.values())
    assert {p.name: p.read_text() for p in (tmp_path / "copy").iterdir()} == files


@pytest.mark.parametrize("store_url", ["moto", "seaweed-proxied"], indirect=True)
def test_a_pull_after_a_push_sends_no_blob_request(store_url: str, tmp_path: Path) -> None:
    from registry.store import open_store

    source = tmp_path / "model"
    source.mkdir()
    files = {"weights.bin": b"w" * 300_000, "config.json": b"{}"}
    for name, body in files.items():
        (source / name).write_bytes(body)
    with registry.init(project="proj", job_type="push") as run:
        artifact = registry.Artifact("model", type="model")
        artifact.add_dir(source)
        run.log_artifact(artifact)
    store = open_store(store_url)
    gets = record_requests(store, "GET")
    report = registry.Api(store_url).artifact("proj/model:latest").pull(tmp_path / "deploy")
    assert file_byte_keys(store, gets) == []  # neither the files (blobs or packs) nor the file list
    assert report.fetched_bytes == 0 and report.local_bytes == sum(len(b) for b in files.values())
    assert {p.name: p.read_bytes() for p in (tmp_path / "deploy").iterdir()} == files
