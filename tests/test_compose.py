"""docker-compose.minio.yml: a pinned, recent MinIO, a one-shot job creating bucket `registry`,
and README instructions that point at the same bucket and endpoint. (No Docker needed: the file is
only parsed.)"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.minio.yml"
README = ROOT / "README.md"
BUCKET = "registry"
ENDPOINT = "http://localhost:9000"
ENV = {
    "REGISTRY_URL": f"s3://{BUCKET}/",
    "AWS_ENDPOINT_URL": ENDPOINT,
    "AWS_ACCESS_KEY_ID": "minioadmin",
    "AWS_SECRET_ACCESS_KEY": "minioadmin",
    "AWS_DEFAULT_REGION": "us-east-1",
}
RELEASE = re.compile(r"^RELEASE\.(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z$")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _release_date(image: str) -> dt.datetime:
    name, _, tag = image.partition(":")
    match = RELEASE.match(tag)
    assert match, f"{image}: pin a MinIO release tag like RELEASE.2025-09-07T16-13-09Z, not {tag or 'latest'!r}"
    return dt.datetime(*map(int, match.groups()))


def _command_text(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend([value] if isinstance(value, str) else value)
    return "\n".join(parts)


def test_services(compose):
    assert {"minio", "createbucket"} <= set(compose["services"])


def test_minio_image_is_a_recent_release(compose):
    minio = compose["services"]["minio"]
    assert minio["image"].split(":")[0] in ("minio/minio", "quay.io/minio/minio")
    assert _release_date(minio["image"]) >= dt.datetime(2025, 9, 1)


def test_minio_ports_credentials_and_volume(compose):
    minio = compose["services"]["minio"]
    ports = {str(p).split(":")[0] for p in minio["ports"]}
    assert {"9000", "9001"} <= ports
    env = minio["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    assert env["MINIO_ROOT_USER"] == ENV["AWS_ACCESS_KEY_ID"]
    assert env["MINIO_ROOT_PASSWORD"] == ENV["AWS_SECRET_ACCESS_KEY"]
    volume = minio["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "data should live in a named volume"


def test_createbucket_makes_the_registry_bucket_idempotently(compose):
    job = compose["services"]["createbucket"]
    assert job["image"].split(":")[0] in ("minio/mc", "quay.io/minio/mc")
    assert "minio" in job["depends_on"]
    script = _command_text(job)
    assert "mc alias set" in script
    made = re.findall(r"mc mb\s+(?:--\S+\s+)*(\S+)", script)
    assert made, "the job should run `mc mb`"
    assert all(target.rstrip("/").split("/")[-1] == BUCKET for target in made)
    assert "--ignore-existing" in script


def test_header_documents_the_environment():
    text = COMPOSE.read_text(encoding="utf-8")
    for key, value in ENV.items():
        assert f"{key}={value}" in text, f"header should show {key}={value}"


def test_readme_uses_the_same_bucket_and_endpoint():
    text = README.read_text(encoding="utf-8")
    assert f"s3://{BUCKET}" in text
    assert f"AWS_ENDPOINT_URL={ENDPOINT}" in text
