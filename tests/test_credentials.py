"""Credentials never leak: not into a log line, an error message, CLI output or the store.

Recognisable fake credentials are put where boto3 finds them; operations that succeed (on
moto, and on SeaweedFS with its real test keys) and that fail (SeaweedFS refusing the fake
keys, a URL with credentials in it) are run while every log record is captured at DEBUG;
then every message, every CLI stream and every object in the store is searched for them.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

import registry
from helpers import log_files
from registry.gc import collect_garbage
from registry.store import open_store
from store_fixtures import subprocess_env

KEY_ID = "AKIAFAKEKEY1234567890"
SECRET = "s3cr3t-FAKE-wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
TOKEN = "tok-FAKE-IQoJb3JpZ2luX2VjEJr-FAKE-SESSION-TOKEN"
FAKE = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN, "AWS_DEFAULT_REGION": "us-east-1"}
THIRD_PARTY = ("botocore", "boto3", "s3transfer", "urllib3")


def leaks(text: str | bytes, secrets=(KEY_ID, SECRET, TOKEN)) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [s for s in secrets if s in text]


def record_leaks(records, *, third_party: bool, secrets=(KEY_ID, SECRET, TOKEN)) -> list[tuple[str, list[str], str]]:
    """(logger, secrets found, start of the line) for every captured record that holds one."""
    found = []
    for r in records:
        if r.name.startswith(THIRD_PARTY) != third_party:
            continue
        try:
            text = r.getMessage()
        except Exception:  # noqa: BLE001 - a record whose args do not format
            text = f"{r.msg} {r.args}"
        if r.exc_info:
            text += logging.Formatter().formatException(r.exc_info)
        if hit := leaks(text, secrets):
            found.append((r.name, hit, text[:200]))
    return found


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records reach it
    for name in ("registry", "backends", *THIRD_PARTY):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def seaweed_with_fake_keys(seaweed, seaweed_bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    """The real SeaweedFS server, approached with credentials it does not know."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{seaweed_bucket}/credentials-test"
    monkeypatch.setenv("REGISTRY_URL", url)
    return url


def failing_operations(url: str, tmp_path: Path) -> list[str]:
    """Operations refused for bad credentials; returns their error messages (each must be typed)."""
    messages = []
    src = tmp_path / "file.txt"
    src.write_text("x")
    calls = [
        lambda: log_files("data", {"a.txt": b"x"}),
        lambda: registry.Api(url).artifact("proj/data:latest"),
        lambda: registry.Api(url).artifact_versions("proj/data"),
        lambda: registry.Api(url).set_alias("proj/data:v0", "best"),
        lambda: collect_garbage(open_store(url), grace_seconds=0),
    ]
    for call in calls:
        with pytest.raises(registry.RegistryError) as raised:
            call()
        messages += [str(raised.value), repr(raised.value)]
    return messages


@pytest.mark.parametrize("engine", ["obstore", "botocore"])
def test_refused_credentials_are_not_in_errors_or_registry_logs(
    seaweed_with_fake_keys: str, tmp_path: Path, everything_logged, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_S3_ENGINE", engine)
    messages = failing_operations(seaweed_with_fake_keys, tmp_path)
    assert any("refused" in m or "InvalidAccessKeyId" in m for m in messages), messages
    assert [m for m in messages if leaks(m)] == []
    assert record_leaks(everything_logged.records, third_party=False) == []


def test_refused_credentials_are_not_in_any_log_line_even_botocore_debug(
    seaweed_with_fake_keys: str, tmp_path: Path, everything_logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore at DEBUG logs each request with its headers (Authorization names the key id,
    X-Amz-Security-Token is the token): a user turning on DEBUG must not get them in the logs."""
    monkeypatch.setenv("REGISTRY_S3_ENGINE", "botocore")
    failing_operations(seaweed_with_fake_keys, tmp_path)
    assert any(r.name.startswith("botocore") for r in everything_logged.records)  # DEBUG really was on
    found = record_leaks(everything_logged.records, third_party=True)
    by_logger: dict[str, set[str]] = {}
    for name, hit, _ in found:
        by_logger.setdefault(name, set()).update(hit)
    assert by_logger == {}, f"{len(found)} log lines leak credentials, e.g. {found[:1]}"


def test_cli_stderr_never_shows_credentials(seaweed_with_fake_keys: str, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    env = subprocess_env(seaweed_with_fake_keys, tmp_path / "cache-cli")
    for args in (["--debug", "push", str(src), "proj/model", "--type", "model"], ["pull", "proj/model:latest", "-d", str(tmp_path / "dl")]):
        proc = subprocess.run([sys.executable, "-m", "registry.cli", *args], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == registry.StorageError.exit_code, proc.stderr
        assert "registry: error:" in proc.stderr
        assert leaks(proc.stdout + proc.stderr) == [], proc.stderr


@pytest.mark.parametrize("scheme_url", [f"s3://{KEY_ID}:{SECRET}@bucket/prefix", f"s3://{KEY_ID}:{SECRET}@bucket"], ids=["with-prefix", "bucket-only"])
def test_credentials_written_into_the_store_url_are_not_echoed(scheme_url: str, tmp_path: Path, monkeypatch, everything_logged) -> None:
    """A user who pastes keys into the URL gets an error, not the keys back in it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: no request can succeed
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    messages = []
    for call in (lambda: registry.Api(scheme_url).artifact("proj/data"), lambda: registry.init(project="proj", url=scheme_url)):
        with pytest.raises(registry.RegistryError) as raised:
            call()
        messages += [str(raised.value), repr(raised.value)]
    registry.finish()
    assert [m for m in messages if leaks(m, (SECRET,))] == []
    assert record_leaks(everything_logged.records, third_party=False, secrets=(SECRET,)) == []
    proc = subprocess.run([sys.executable, "-m", "registry.cli", "--url", scheme_url, "ls"], env=subprocess_env(scheme_url, tmp_path / "c"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and leaks(proc.stdout + proc.stderr, (SECRET,)) == [], proc.stderr


def scan_bucket(client, bucket: str, secrets) -> dict[str, list[str]]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            hit = leaks(body, secrets) or leaks(item["Key"], secrets)
            if hit:
                found[item["Key"]] = hit
    return found


def scan_dir(root: Path, secrets) -> dict[str, list[str]]:
    return {str(p): hit for p in root.rglob("*") if p.is_file() and (hit := leaks(p.read_bytes(), secrets) or leaks(str(p), secrets))}


def exercise(url: str, tmp_path: Path) -> None:
    """Everything that writes to the store: runs, artifacts, aliases, usage, files, history, gc."""
    saved = tmp_path / "notes.txt"
    saved.write_text("notes\n")
    with registry.init(project="proj", job_type="train", config={"lr": 0.1}) as run:
        art = registry.Artifact("model", type="model", metadata={"note": "credentials test"})
        with art.new_file("weights.bin", mode="wb") as f:
            f.write(b"weights")
        run.log_artifact(art, aliases=["best"])
        run.log({"loss": 0.5})
        run.save(saved, base_path=tmp_path)
    with registry.init(project="proj", job_type="eval") as run:
        run.use_artifact("proj/model:best").download(tmp_path / "dl")
    registry.Api(url).set_alias("proj/model:v0", "prod")
    collect_garbage(open_store(url), grace_seconds=0)


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_nothing_in_the_store_or_cache_holds_credentials_moto(store_url: str, tmp_path: Path, monkeypatch, everything_logged) -> None:
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    exercise(store_url, tmp_path)
    client = boto3.client("s3", region_name="us-east-1")
    assert scan_bucket(client, "moto-bucket", (KEY_ID, SECRET, TOKEN)) == {}
    assert scan_dir(tmp_path, (KEY_ID, SECRET, TOKEN)) == {}  # cache, hash database, downloads
    assert record_leaks(everything_logged.records, third_party=False) == []


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_nothing_in_the_store_holds_the_real_seaweed_keys(store_url: str, seaweed, tmp_path: Path, everything_logged) -> None:
    exercise(store_url, tmp_path)
    secrets = (seaweed.access_key, seaweed.secret_key)
    bucket, prefix = store_url[5:].split("/", 1)
    client = seaweed.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            if leaks(body, secrets):
                found[item["Key"]] = leaks(body, secrets)
    assert found == {}
    assert scan_dir(tmp_path, secrets) == {}
    assert record_leaks(everything_logged.records, third_party=False, secrets=secrets) == []
