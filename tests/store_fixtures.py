"""Fixtures that run a test against each backend: local directory, moto in-process, real SeaweedFS."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import registry
from http_proxy import RecordingProxy

BACKENDS = ["local", "moto", "seaweed"]
SEAWEED_BUCKET = "registry-tests"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(autouse=True)
def isolated_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own cache, data dir and working directory, and no active run."""
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    monkeypatch.delenv("REGISTRY_PROJECT", raising=False)
    monkeypatch.delenv("REGISTRY_CACHE_MAX", raising=False)
    monkeypatch.delenv("REGISTRY_LINK_MODE", raising=False)
    monkeypatch.delenv("REGISTRY_S3_ENGINE", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    registry.finish()


@pytest.fixture(scope="session")
def seaweed_bucket(seaweed) -> str:
    seaweed.make_bucket(SEAWEED_BUCKET)
    return SEAWEED_BUCKET


def _unique() -> str:
    return uuid.uuid4().hex[:12]


def seaweed_store_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, name: str = "") -> str:
    """Point this process (boto3's variables and ``REGISTRY_URL``) at a fresh prefix of the
    session's SeaweedFS bucket; returns that store's URL."""
    seaweed = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("seaweed_bucket")
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    url = f"s3://{bucket}/{name or _unique()}"
    monkeypatch.setenv("REGISTRY_URL", url)
    return url


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty store on each backend; ``REGISTRY_URL`` points at it."""
    kind = request.param
    if kind == "local":
        url = str(tmp_path / "store")
        monkeypatch.setenv("REGISTRY_URL", url)
        yield url
        return
    if kind == "moto":
        from moto import mock_aws

        for key, value in FAKE_CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("REGISTRY_S3_ENGINE", "botocore")  # in-process moto intercepts botocore only
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            import boto3

            boto3.client("s3").create_bucket(Bucket="moto-bucket")
            url = f"s3://moto-bucket/{_unique()}"
            monkeypatch.setenv("REGISTRY_URL", url)
            yield url
        return
    seaweed = request.getfixturevalue("seaweed")
    url = seaweed_store_url(request, monkeypatch)
    if kind == "seaweed-proxied":  # every request seen (and faults injectable) by a proxy
        with RecordingProxy(seaweed.endpoint_url) as proxy:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            yield url
        return
    yield url


def proxy_of(store_url: str) -> RecordingProxy:
    """The recording proxy in front of a ``seaweed-proxied`` store (the endpoint points at it)."""
    return RecordingProxy.live[os.environ["AWS_ENDPOINT_URL"]]


def record_requests(store, method: str = "GET") -> list[str]:
    """The keys of every ``method`` request the store sends from now on (a live list): through
    botocore's event hooks on moto, through the recording proxy on ``seaweed-proxied``."""
    seen: list[str] = []
    client = getattr(store.backend, "client", None)
    if client is not None:
        operation = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject"}[method]
        client.meta.events.register(f"provide-client-params.s3.{operation}", lambda params, **kw: seen.append(params["Key"]))
        return seen
    bucket = store.backend.bucket
    proxy_of(store.url).listeners.append(lambda r: seen.append(r.key(bucket)) if r.method == method else None)
    return seen


@pytest.fixture
def api(store_url: str) -> registry.Api:
    return registry.Api(store_url)


def subprocess_env(store_url: str, cache_dir: Path) -> dict[str, str]:
    """Environment for a child process using the same store (credentials and endpoint included)."""
    env = dict(os.environ)
    env["REGISTRY_URL"] = store_url
    env["REGISTRY_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    return env


def record_reads(store) -> list[tuple[str, tuple[int, int] | None]]:
    """(key, byte range ``[start, end)`` or None for a whole object) of every GET the store sends
    from now on (a live list), on either engine."""
    seen: list[tuple[str, tuple[int, int] | None]] = []

    def add(key: str, header: str | None) -> None:
        if header is None:
            seen.append((key, None))
            return
        first, _, last = header.removeprefix("bytes=").partition("-")
        seen.append((key, (int(first), int(last) + 1)))

    client = getattr(store.backend, "client", None)
    if client is not None:
        client.meta.events.register("provide-client-params.s3.GetObject",
                                    lambda params, **kw: add(params["Key"], params.get("Range")))
        return seen
    bucket = store.backend.bucket
    proxy_of(store.url).listeners.append(
        lambda r: add(r.key(bucket), r.headers.get("range")) if r.method == "GET" and "list-type" not in r.query else None)
    return seen


def operation_name(request) -> str:
    """The S3 operation a request seen by the proxy is (the names botocore gives them)."""
    query = request.query
    if request.method == "PUT":
        return "UploadPart" if "partNumber" in query else "PutObject"
    if request.method == "POST":
        if query.startswith("delete"):
            return "DeleteObjects"
        return "CreateMultipartUpload" if query.startswith("uploads") else "CompleteMultipartUpload"
    if request.method == "GET":
        return "ListObjectsV2" if "list-type" in query else "GetObject"
    return {"HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(request.method, request.method)


def record_operations(store) -> list[str]:
    """The S3 operations the store sends from now on (a live list), on either engine."""
    seen: list[str] = []
    client = getattr(store.backend, "client", None)
    if client is not None:
        client.meta.events.register("before-call.s3", lambda model, **kw: seen.append(model.name))
    else:
        proxy_of(store.url).listeners.append(lambda r: seen.append(operation_name(r)))
    return seen


def small_parts(monkeypatch: pytest.MonkeyPatch, part: int) -> None:
    """Make blobs larger than ``part`` move in parts of ``part`` bytes, on either S3 engine."""
    import backends.s3 as s3
    import backends.s3_obstore as s3_obstore

    for name in ("SINGLE_REQUEST_MAX", "MULTIPART_THRESHOLD", "MULTIPART_CHUNKSIZE"):
        monkeypatch.setattr(s3, name, part)
    for name in ("SINGLE_REQUEST_MAX", "PART_SIZE"):
        monkeypatch.setattr(s3_obstore, name, part)
