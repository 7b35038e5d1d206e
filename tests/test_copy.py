"""``registry copy``: mirror a project between stores, incrementally, verified, and never over a
diverged history."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from helpers import kill_when_paused
from registry.cli import cli
from registry.endpoints import open_side
from registry.mirror import DivergedError
from servers import pick_ports
from store_builders import log_pipeline, log_raw
from store_fixtures import subprocess_env


def records(url: str | registry.Api) -> dict[str, bytes]:
    """Every record of a store byte for byte (alias records hold their own times: compared by target)."""
    backend = (url if isinstance(url, registry.Api) else registry.Api(url)).store.backend
    found = {}
    for info in backend.list("projects/"):
        if "/aliases/" not in info.key:
            found[info.key] = backend.read(info.key)
    return found


def aliases(url: str, collection: str) -> dict[int, list[str]]:
    return registry.Api(url).aliases(collection)


def assert_mirrored(src: str, dst: str) -> None:
    assert records(dst) == records(src)
    for name in ("raw", "model"):
        assert aliases(dst, f"proj/{name}") == aliases(src, f"proj/{name}")
    model = registry.Api(dst).artifact("proj/model:best")
    model.verify(model.download(Path(f"pulled-{uuid.uuid4().hex[:6]}")))
    assert model.logged_by().used_artifacts()[0].qualified_name == "proj/raw:v0"


@pytest.fixture
def two_buckets(seaweed, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    suffix = uuid.uuid4().hex[:8]
    return (f"s3://{seaweed.make_bucket(f'copy-a-{suffix}')}/ml", f"s3://{seaweed.make_bucket(f'copy-b-{suffix}')}/ml")


def test_copy_project_between_buckets_and_to_a_directory(two_buckets: tuple[str, str], seaweed, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bucket_a, bucket_b = two_buckets
    monkeypatch.setenv("REGISTRY_URL", bucket_a)
    log_pipeline()
    # only the per-side endpoints reach the server: the default endpoint is a port where nothing listens
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{pick_ports(1, grpc=False)[0]}")
    result = CliRunner().invoke(cli, ["copy", bucket_a, bucket_b, "--project", "proj",
                                      "--src-endpoint", seaweed.endpoint_url, "--dst-endpoint", seaweed.endpoint_url])
    assert result.exit_code == 0, result.output
    assert "copied proj/model:v0" in result.output
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)
    assert_mirrored(bucket_a, bucket_b)
    local = str(tmp_path / "mirror")
    registry.copy_store(bucket_a, local, projects=["proj"])
    assert_mirrored(bucket_a, local)

    log_raw("proj", "raw data, second version")  # A: raw v1 (one new file, one unchanged)
    again = registry.copy_store(bucket_a, bucket_b, projects=["proj"])
    assert again.copied == ["proj/raw:v1"] and again.present == 2
    assert again.sent.blobs == 2 and again.sent.present == 1  # the new file (a blob or a pack) and its file list; labels stayed
    assert_mirrored(bucket_a, bucket_b)
    assert registry.copy_store(bucket_a, bucket_b, projects=["proj"]).sent.blobs == 0

    monkeypatch.setenv("REGISTRY_URL", bucket_b)
    log_raw("proj", "written straight into B")  # B: raw v2
    monkeypatch.setenv("REGISTRY_URL", bucket_a)
    log_raw("proj", "written into A")  # A: raw v2, other contents
    before = records(bucket_b)
    with pytest.raises(DivergedError, match="diverged"):
        registry.copy_store(bucket_a, bucket_b, projects=["proj"])
    assert records(bucket_b) == before
    refused = CliRunner().invoke(cli, ["copy", bucket_a, bucket_b, "--project", "proj"])
    assert refused.exit_code == 3 and "proj/raw:v2" in refused.output


def test_an_interrupted_copy_continues_when_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    monkeypatch.setenv("REGISTRY_URL", src)
    log_pipeline()
    log_raw("proj", "second")
    calls = []
    original = registry.mirror._write_version

    def dies_on_second(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed after the blobs of raw:v0 were sent
        return original(*args)

    monkeypatch.setattr(registry.mirror, "_write_version", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        registry.copy_store(src, dst, projects=["proj"])
    assert registry.Api(dst).version_numbers("proj/raw") == []  # model:v0 was copied, raw:v0 was not

    report = registry.copy_store(src, dst, projects=["proj"])

    assert report.copied == ["proj/raw:v0", "proj/raw:v1"] and report.present == 1
    assert_mirrored(src, dst)


def test_a_corrupt_source_blob_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "src", str(tmp_path / "dst")
    monkeypatch.setenv("REGISTRY_URL", str(src))
    log_pipeline()
    weights = registry.Api(str(src)).artifact("proj/model:best").get_entry("weights.bin").digest
    blob = src / "blobs" / "sha256" / weights[:2] / weights[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"flipped bits")

    with pytest.raises(registry.IntegrityError, match="corrupt"):
        registry.copy_store(str(src), dst, projects=["proj"])

    assert registry.Api(dst).version_numbers("proj/model") == []


def test_copying_one_artifact_brings_its_lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    monkeypatch.setenv("REGISTRY_URL", src)
    log_pipeline()
    log_raw("proj", "newer raw, not upstream of the model")

    report = registry.copy_store(src, dst, addresses=["proj/model:best"])

    assert sorted(report.copied) == ["proj/model:v0", "proj/raw:v0"]
    api = registry.Api(dst)
    train = api.artifact("proj/model:best").logged_by()
    assert train.record.job_type == "train" and train.used_artifacts()[0].qualified_name == "proj/raw:v0"
    assert [r.record.job_type for r in api.runs("proj")] == ["train", "load-data"]
    assert api.artifact("proj/raw:latest").version == "v0"


def test_each_side_can_use_its_own_credentials_profile(two_buckets: tuple[str, str], seaweed, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bucket_a, bucket_b = two_buckets
    monkeypatch.setenv("REGISTRY_URL", bucket_a)
    log_pipeline()
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[lab]\naws_access_key_id = {seaweed.access_key}\n"
                           f"aws_secret_access_key = {seaweed.secret_key}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-key")  # the default chain is wrong for both sides
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")

    refused = CliRunner().invoke(cli, ["copy", bucket_a, bucket_b, "--project", "proj"])
    assert refused.exit_code == 5, refused.output
    copied = CliRunner().invoke(cli, ["copy", bucket_a, bucket_b, "--project", "proj",
                                      "--src-profile", "lab", "--dst-profile", "lab"])
    assert copied.exit_code == 0, copied.output
    unknown = CliRunner().invoke(cli, ["copy", bucket_a, bucket_b, "--project", "proj", "--src-profile", "nope"])
    assert unknown.exit_code == 5 and "nope" in unknown.output

    source, dest = (registry.Api(store=open_side(url, profile="lab")) for url in (bucket_a, bucket_b))
    assert records(dest) == records(source)
    assert dest.aliases("proj/model") == source.aliases("proj/model")


COPY_POINTS = ["copy-after-blobs", "copy-after-version", "copy-before-runs"]


@pytest.mark.parametrize("kind", ["local", "seaweed"])
@pytest.mark.parametrize("point", COPY_POINTS)
def test_a_copy_killed_at_any_point_then_rerun_ends_mirrored(kind: str, point: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "local":
        src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    else:
        src, dst = request.getfixturevalue("two_buckets")
    monkeypatch.setenv("REGISTRY_URL", src)
    log_pipeline()
    log_raw("proj", "second")
    worker = str(Path(__file__).parent / "offline_worker.py")
    proc = subprocess.Popen([sys.executable, worker, "copy", src, dst, "proj", point],
                            env=subprocess_env(src, tmp_path / "copier-cache"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when_paused(proc, point)

    registry.copy_store(src, dst, projects=["proj"])

    assert_mirrored(src, dst)
    assert registry.Api(dst).version_numbers("proj/raw") == [0, 1]
