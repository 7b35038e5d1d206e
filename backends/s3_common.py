"""What both S3 engines share: retry limits, the one-line messages users see, and the
capability probe that proves a bucket enforces conditional writes."""
from __future__ import annotations

import uuid
from typing import Protocol

from .errors import ConditionalWritesUnsupported, PreconditionFailed, StorageUnavailable

MAX_ATTEMPTS = 8
ANNOUNCE_FROM_ATTEMPT = 2
"""Retries are silent until this many attempts failed (the first backoff is at most a second)."""
CONNECT_TIMEOUT = 1.5
"""Seconds to open a connection: an endpoint that answers at all does so in far less."""
FORBIDDEN_CODES = {"AccessDenied", "AllAccessDisabled"}
"""Valid credentials refused by the server's permissions (as opposed to bad or expired credentials)."""
_VERBS = {"PutObject": "write", "DeleteObject": "delete", "DeleteObjects": "delete", "GetObject": "read",
          "HeadObject": "read", "ListObjectsV2": "list", "CreateMultipartUpload": "write",
          "UploadPart": "write", "CompleteMultipartUpload": "write"}
_FAKE_ETAG = '"0123456789abcdef0123456789abcdef"'


def waiting_message(endpoint: str, reason: str) -> str:
    return (f"registry: waiting for the S3 server at {endpoint} ({reason}); "
            f"retrying, up to {MAX_ATTEMPTS} attempts")


def unreachable(endpoint: str, url: str, error_name: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"nothing answers at {endpoint} ({error_name}) for {url}: "
        "start the S3 server, or check AWS_ENDPOINT_URL and the network"
    )


def no_bucket(bucket: str, endpoint: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"bucket {bucket!r} does not exist at {endpoint}: create it, or check REGISTRY_URL / AWS_ENDPOINT_URL"
    )


def no_credentials(where: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    )


def denied(where: str, code: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"access to {where} was refused ({code}): check the credentials and their permissions"
    )


def permission_message(operation: str, key: str, url: str) -> str:
    """One line naming the refused permission (``s3:PutObject`` on which key), never the credentials."""
    verb = _VERBS.get(operation, "use")
    return (
        f"permission denied: these credentials may not {verb} {key} in {url} (s3:{operation} refused): "
        "use an identity that may, or ask for the permission (see docs/PERMISSIONS.md)"
    )


def unsupported(endpoint: str, header: str) -> str:
    return (
        f"the S3 server at {endpoint} ignores {header} conditional writes, so concurrent writers could "
        "overwrite each other: upgrade it (MinIO >= RELEASE.2025-09-06, SeaweedFS >= 4.18, AWS S3, R2)"
    )


class ConditionalStore(Protocol):
    endpoint: str

    def read(self, key: str) -> bytes: ...
    def read_with_token(self, key: str) -> tuple[bytes, str]: ...
    def write_if_absent(self, key: str, data: bytes) -> str: ...
    def write_if_match(self, key: str, data: bytes, token: str) -> str: ...
    def delete(self, key: str) -> None: ...
    def delete_if_match(self, key: str, token: str) -> None: ...


def prove_conditional_writes(store: ConditionalStore) -> None:
    """Refuse a bucket that ignores ``If-None-Match`` / ``If-Match`` (PUT and DELETE), using a
    probe key of our own under ``_probe/`` that is deleted again."""
    key = f"_probe/{uuid.uuid4().hex}"
    try:
        try:
            token = store.write_if_absent(key, b"1")
        except FileExistsError:  # the key is ours alone: a retry after a lost response
            data, token = store.read_with_token(key)
            if data != b"1":
                raise
        try:
            store.write_if_absent(key, b"2")
        except FileExistsError:
            pass
        else:
            raise ConditionalWritesUnsupported(unsupported(store.endpoint, "If-None-Match"))
        try:
            store.write_if_match(key, b"3", _FAKE_ETAG)
        except PreconditionFailed:
            pass
        else:
            raise ConditionalWritesUnsupported(unsupported(store.endpoint, "If-Match"))
        try:
            store.write_if_match(key, b"4", token)
        except PreconditionFailed:  # a retry after a lost response, or a server that mis-handles If-Match
            if store.read(key) != b"4":
                raise ConditionalWritesUnsupported(unsupported(store.endpoint, "If-Match")) from None
        try:  # alias removal deletes only what it read
            store.delete_if_match(key, _FAKE_ETAG)
        except PreconditionFailed:
            pass
        else:
            raise ConditionalWritesUnsupported(unsupported(store.endpoint, "If-Match on DELETE"))
    finally:
        try:
            store.delete(key)
        except StorageUnavailable:
            pass


class ProbedOnce:
    """``check_ready`` for an S3 engine: the probe runs once per backend object."""

    _ready = False

    def check_ready(self: ConditionalStore) -> None:
        """Prove that this bucket enforces conditional writes before trusting it with versions."""
        if not getattr(self, "_ready", False):
            prove_conditional_writes(self)
            self._ready = True  # type: ignore[attr-defined]
