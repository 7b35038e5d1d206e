"""Permissions enforced by the store, not by the client: SeaweedFS started with identities.

``deploy`` may only read (``Read``, ``List``); ``writer`` may write the whole bucket, except
that a bucket policy denies it ``s3:PutObject``/``s3:DeleteObject`` on every
``aliases/production.json``; ``promoter`` may write nothing but those keys, the audit entries
recording its moves, and the registry's ``_probe/`` capability check. docs/PERMISSIONS.md gives this configuration and its AWS and
MinIO equivalents. Each refusal must be one line naming the permission that was lacking.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import SeaweedServer

import registry
from registry.errors import EXIT_CODES

BUCKET = "guarded"
IDENTITIES = {
    "deploy": ["Read", "List"],
    "writer": ["Read", "List", "Write"],
    "promoter": ["Read", "List", f"Write:{BUCKET}/*/_probe/*", f"Write:{BUCKET}/*/aliases/production.json",
                 f"Write:{BUCKET}/*/audit/*"],  # each move it makes is audited
    "narrow": [f"Read:{BUCKET}", f"List:{BUCKET}"],  # the store only, not the buckets it references
}
SOURCES = "guarded-sources"
PROTECT_PRODUCTION = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "OnlyThePromoterMovesProduction",
        "Effect": "Deny",
        "Principal": {"AWS": ["arn:aws:iam::000000000000:user/writer"]},
        "Action": ["s3:PutObject", "s3:DeleteObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/*/aliases/production.json"],
    }, {
        "Sid": "WritersNeverDeleteBlobs",
        "Effect": "Deny",
        "Principal": {"AWS": ["arn:aws:iam::000000000000:user/writer"]},
        "Action": ["s3:DeleteObject"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/*/blobs/*"],
    }],
}
DENIED = EXIT_CODES["PermissionDenied"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS of its own, with the three identities and the bucket policy above."""
    server = SeaweedServer(tmp_path_factory.mktemp("guarded-seaweed"), identities=IDENTITIES)
    server.start()
    try:
        server.make_bucket(BUCKET)
        server.make_bucket(SOURCES)
        server.client().put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PROTECT_PRODUCTION))
        yield server
    finally:
        server.stop()


class As:
    """Runs the ``registry`` command as one identity, on one store, with its own cache."""

    def __init__(self, server: SeaweedServer, identity: str | None, url: str, home: Path) -> None:
        self.url = url
        self.env = {**os.environ, **server.env(identity), "REGISTRY_URL": url,
                    "REGISTRY_CACHE_DIR": str(home / f"cache-{identity or 'admin'}")}
        self.home = home

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "registry.cli", *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        return proc


@pytest.fixture
def store(guarded: SeaweedServer, tmp_path: Path) -> dict[str, As]:
    """A fresh store holding ``team/model`` v0 and v1 (``production`` -> v0), and a runner per identity."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:10]}"
    runners = {name: As(guarded, None if name == "admin" else name, url, tmp_path)
               for name in ("admin", *IDENTITIES)}
    for i in range(2):
        (tmp_path / "model.bin").write_bytes(b"weights %d" % i)
        runners["admin"].run("push", str(tmp_path / "model.bin"), "team/model", "--type", "model")
    runners["admin"].run("alias", "set", "team/model:v0", "production")
    return runners


def one_line_denial(proc: subprocess.CompletedProcess[str], action: str, key_part: str) -> str:
    line = proc.stderr.strip()
    assert "\n" not in line and line.startswith("registry: error: permission denied:"), line
    assert f"s3:{action}" in line and key_part in line, line
    return line


def test_permission_denied_is_a_storage_and_a_permission_error() -> None:
    assert issubclass(registry.PermissionDenied, registry.StorageError)
    assert issubclass(registry.PermissionDenied, PermissionError)
    assert DENIED not in {code for name, code in EXIT_CODES.items() if name != "PermissionDenied"}


def test_read_only_deployment_pulls_but_cannot_push_move_aliases_or_collect(store: dict[str, As],
                                                                             tmp_path: Path) -> None:
    deploy = store["deploy"]
    shown = json.loads(deploy.run("show", "team/model:production", "--json").stdout)
    assert shown["version"] == "v0"
    deploy.run("pull", "team/model:production", "-d", str(tmp_path / "served"))
    assert (tmp_path / "served" / "model.bin").read_bytes() == b"weights 0"

    (tmp_path / "new.bin").write_bytes(b"rogue")
    pushed = deploy.run("push", str(tmp_path / "new.bin"), "team/model", "--type", "model", code=DENIED)
    one_line_denial(pushed, "PutObject", "may not write")
    moved = deploy.run("alias", "set", "team/model:v1", "production", code=DENIED)
    one_line_denial(moved, "PutObject", "_probe/")
    collected = deploy.run("gc", "--grace", "0s", code=DENIED)
    one_line_denial(collected, "PutObject", "may not write")
    assert "weights" not in collected.stderr and store["deploy"].env["AWS_SECRET_ACCESS_KEY"] not in moved.stderr

    versions = json.loads(store["admin"].run("ls", "team/model", "--json").stdout)
    assert len(versions) == 2  # nothing was added by the refused push


def test_only_the_promoter_moves_production(store: dict[str, As], tmp_path: Path) -> None:
    writer, promoter = store["writer"], store["promoter"]
    (tmp_path / "next.bin").write_bytes(b"weights 2")
    writer.run("push", str(tmp_path / "next.bin"), "team/model", "--type", "model", "--alias", "staging")
    writer.run("alias", "set", "team/model:v2", "best")

    refused = writer.run("alias", "set", "team/model:v2", "production", code=DENIED)
    one_line_denial(refused, "PutObject", "aliases/production.json")
    removal = writer.run("alias", "rm", "team/model", "production", code=DENIED)
    one_line_denial(removal, "DeleteObject", "aliases/production.json")
    assert json.loads(writer.run("show", "team/model:production", "--json").stdout)["version"] == "v0"

    promoter.run("alias", "set", "team/model:v2", "production")
    assert json.loads(writer.run("show", "team/model:production", "--json").stdout)["version"] == "v2"
    (tmp_path / "own.bin").write_bytes(b"promoter's own")
    pushed = promoter.run("push", str(tmp_path / "own.bin"), "team/other", "--type", "model", code=DENIED)
    one_line_denial(pushed, "PutObject", "may not write")


def test_writers_cannot_collect_garbage_but_the_collector_can(store: dict[str, As], guarded: SeaweedServer) -> None:
    prefix = store["admin"].url.split("/", 3)[3]
    garbage = f"{prefix}/blobs/sha256/ab/{'c' * 62}"
    guarded.client().put_object(Bucket=BUCKET, Key=garbage, Body=b"unreferenced")
    refused = store["writer"].run("gc", "--grace", "0s", code=DENIED)
    one_line_denial(refused, "DeleteObject", "blobs/sha256/ab/")
    assert guarded.client().head_object(Bucket=BUCKET, Key=garbage)["ContentLength"] == len(b"unreferenced")
    store["admin"].run("gc", "--grace", "0s")
    assert guarded.client().list_objects_v2(Bucket=BUCKET, Prefix=garbage)["KeyCount"] == 0
    pulled = store["deploy"].run("pull", "team/model:production", "-d", "after-gc", "--json")
    assert json.loads(pulled.stdout)["placed"] == ["model.bin"]  # gc kept what versions hold


def test_the_python_api_raises_permission_denied_and_a_reference_names_its_source(
        store: dict[str, As], guarded: SeaweedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, a refusal is ``registry.PermissionDenied`` (a ``PermissionError``); an identity
    that may read the store but not a referenced bucket is told which reference it cannot read."""
    guarded.client().put_object(Bucket=SOURCES, Key="raw/train.csv", Body=b"a,b\n")
    for key, value in {**guarded.env(), "REGISTRY_URL": store["admin"].url,
                       "REGISTRY_CACHE_DIR": str(tmp_path / "cache-admin-api")}.items():
        monkeypatch.setenv(key, value)
    with registry.init(project="team", job_type="ingest") as run:
        data = registry.Artifact("raw", type="dataset")
        data.add_reference(f"s3://{SOURCES}/raw/train.csv")
        run.log_artifact(data)

    for key, value in {**guarded.env("narrow"), "REGISTRY_CACHE_DIR": str(tmp_path / "cache-narrow-api")}.items():
        monkeypatch.setenv(key, value)
    api = registry.Api(store["admin"].url)
    with pytest.raises(PermissionError) as refused:
        api.set_alias("team/model:v1", "best")
    assert isinstance(refused.value, registry.PermissionDenied) and "s3:PutObject" in str(refused.value)
    with pytest.raises(registry.PermissionDenied,
                       match=rf"may not read reference 'train.csv' \(s3://{SOURCES}/raw/train.csv\)"):
        api.artifact("team/raw:latest").download(tmp_path / "raw")
