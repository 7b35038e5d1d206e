"""Fixtures that run a test against each backend: local directory, moto in-process, real SeaweedFS."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import registry

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
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            import boto3

            boto3.client("s3").create_bucket(Bucket="moto-bucket")
            url = f"s3://moto-bucket/{_unique()}"
            monkeypatch.setenv("REGISTRY_URL", url)
            yield url
        return
    seaweed = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("seaweed_bucket")
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    url = f"s3://{bucket}/{_unique()}"
    monkeypatch.setenv("REGISTRY_URL", url)
    yield url


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
