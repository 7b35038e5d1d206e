"""The SeaweedFS fixture works, and its S3 behaves as the registry relies on."""

from __future__ import annotations

import subprocess
import sys
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from servers import SeaweedServer


def fresh_bucket(seaweed: SeaweedServer) -> str:
    return seaweed.make_bucket("t-" + uuid.uuid4().hex[:12])


def error_status(exc: ClientError) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_and_round_trip(seaweed: SeaweedServer) -> None:
    bucket = fresh_bucket(seaweed)
    s3 = seaweed.client()
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    put = s3.put_object(Bucket=bucket, Key="a/b.bin", Body=b"\x00payload\xff")
    got = s3.get_object(Bucket=bucket, Key="a/b.bin")
    assert got["Body"].read() == b"\x00payload\xff"
    assert got["ETag"] == put["ETag"] == s3.head_object(Bucket=bucket, Key="a/b.bin")["ETag"]

    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_env_works_in_a_subprocess(seaweed: SeaweedServer) -> None:
    bucket = fresh_bucket(seaweed)
    seaweed.client().put_object(Bucket=bucket, Key="k", Body=b"from-env")
    code = (
        "import boto3, sys;"
        f"sys.stdout.write(boto3.client('s3').get_object(Bucket='{bucket}', Key='k')['Body'].read().decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=seaweed.env(), capture_output=True, text=True, check=True
    )
    assert out.stdout == "from-env"


def test_wrong_credentials_are_rejected(seaweed: SeaweedServer) -> None:
    bad = boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key="wrong-secret",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as exc:
        bad.list_buckets()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_conditional_puts(seaweed: SeaweedServer) -> None:
    bucket = fresh_bucket(seaweed)
    s3 = seaweed.client()
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")

    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert error_status(exists.value) in (409, 412)

    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_status(stale.value) in (409, 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"

    s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"
