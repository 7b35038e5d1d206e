"""``s3://bucket/key`` references: one object, every object under a prefix, or one version of an
object (``?versionId=``).

Each object is described by one request (HEAD, or with ``checksum`` a GET that hashes it), so
its ETag, size and VersionId (on a versioned bucket) describe the bytes that were hashed. A
download asks for the recorded version when there is one, else for the object only if its
ETag is still the recorded one (``If-Match``). Credentials are the standard chain's; a bucket
served at another endpoint than the store's is named in ``REGISTRY_REFERENCE_ENDPOINTS``.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from backends.s3_client import make_client_at

from .errors import InvalidNameError, NotFoundError, PermissionDenied, StorageError
from .records import FileEntry
from .reference_entries import Found, artifact_path, changed, first, hash_stream

_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled"}


class S3Source:
    """Objects in S3 buckets, each reached at its configured endpoint (default: the store's)."""

    def __init__(self, endpoints: dict[str, str], workers: int = 16) -> None:
        self.endpoints = endpoints
        self.workers = workers
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def client(self, bucket: str) -> Any:
        """A client for ``bucket``'s endpoint, made on first use (clients are thread-safe)."""
        endpoint = self.endpoints.get(bucket)
        with self._lock:
            if endpoint not in self._clients:
                self._clients[endpoint] = make_client_at(endpoint)
            return self._clients[endpoint]

    def find(self, uri: str, name: str | None, checksum: bool, max_objects: int) -> list[Found]:
        bucket, key, version = parse(uri)
        client = self.client(bucket)
        if version is not None or (key and not key.endswith("/") and self._exists(client, bucket, key)):
            path = artifact_path(name, None, key.rsplit("/", 1)[-1])
            return [self._describe(client, bucket, key, version, path, checksum)]
        prefix = key.rstrip("/") + "/" if key else ""
        keys = first(self._listed(client, bucket, prefix, name), max_objects, uri)
        if not keys:
            raise NotFoundError(f"{uri} names no object and no prefix holding any: check the bucket and key")
        def describe(path_key: tuple[str, str]) -> Found:
            return self._describe(client, bucket, path_key[1], None, path_key[0], checksum)

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(keys)))) as pool:
            return list(pool.map(describe, keys))

    def _listed(self, client: Any, bucket: str, prefix: str, name: str | None) -> Iterator[tuple[str, str]]:
        """(artifact path, key) of each object under ``prefix``, directory markers left out."""
        paginator = client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        yield artifact_path(name, item["Key"][len(prefix):], ""), item["Key"]
        except (ClientError, BotoCoreError) as e:
            raise _error(e, f"s3://{bucket}/{prefix}") from None

    def _exists(self, client: Any, bucket: str, key: str) -> bool:
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as e:
            if _code(e) in _MISSING:
                return False
            raise _error(e, f"s3://{bucket}/{key}") from None
        except BotoCoreError as e:
            raise _error(e, f"s3://{bucket}/{key}") from None

    def _describe(self, client: Any, bucket: str, key: str, version: str | None, path: str,
                  checksum: bool) -> Found:
        uri = f"s3://{bucket}/{key}"
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        try:
            if not checksum:
                head = client.head_object(**args)
                return _found(path, uri, head, head["ContentLength"], None)
            response = client.get_object(**args)
            sha256, size = hash_stream(response["Body"])
            return _found(path, uri, response, size, sha256)
        except (ClientError, BotoCoreError) as e:
            raise _error(e, uri) from None

    def open(self, entry: FileEntry) -> IO[bytes]:
        ref = entry.ref
        assert ref is not None
        bucket, key, _ = parse(ref.uri)
        args: dict[str, str] = {"Bucket": bucket, "Key": key}
        if ref.version_id:
            args["VersionId"] = ref.version_id
        elif ref.etag:
            args["IfMatch"] = f'"{ref.etag}"'
        try:
            response = self.client(bucket).get_object(**args)
        except ClientError as e:
            if _code(e) in {"PreconditionFailed", "412"}:
                raise changed(entry, "its ETag is no longer the recorded one") from None
            raise _error(e, ref.uri, entry.path) from None
        except BotoCoreError as e:
            raise _error(e, ref.uri, entry.path) from None
        etag = response.get("ETag", "").strip('"') or None
        if ref.etag and etag and etag != ref.etag:
            raise changed(entry, f"ETag {etag} instead of {ref.etag}")
        return response["Body"]


def parse(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key?versionId=V`` -> (bucket, key, V or None). The key is taken as written
    (S3 keys may hold ``#``, ``%`` or ``?``); only a trailing ``?versionId=`` is W&B's version pin."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidNameError(f"{uri} names no bucket: use s3://bucket/key")
    key, marker, version = key.rpartition("?versionId=") if "?versionId=" in key else (key, "", "")
    return bucket, key, version if marker and version else None


def _found(path: str, uri: str, response: dict, size: int, sha256: str | None) -> Found:
    version = response.get("VersionId")
    modified = response.get("LastModified")
    return Found(path=path, uri=uri, size=size, etag=response.get("ETag", "").strip('"') or None,
                 version_id=version if version and version != "null" else None,
                 last_modified=modified.isoformat() if modified is not None else None, sha256=sha256)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) or str(
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _error(error: Exception, uri: str, path: str | None = None) -> Exception:
    """A botocore error as one line naming the reference (and the artifact file, on download)."""
    what = f"reference {path!r} ({uri})" if path else uri
    if isinstance(error, ClientError):
        code = _code(error)
        if code in _MISSING:
            return NotFoundError(f"{what} does not exist (any more): restore it, or log a new version")
        if code in _DENIED:
            return PermissionDenied(
                f"permission denied: these credentials may not read {what} "
                f"(s3:{error.operation_name} refused): use credentials that may, e.g. AWS_PROFILE"
            )
        return StorageError(f"S3 request for {what} failed ({code})")
    return StorageError(
        f"cannot reach the S3 endpoint for {what} ({type(error).__name__}): check AWS_ENDPOINT_URL "
        "or REGISTRY_REFERENCE_ENDPOINTS"
    )
