"""A store in an S3 bucket (AWS S3, MinIO, SeaweedFS, R2...) through botocore: the engine for
``REGISTRY_S3_ENGINE=botocore`` and for in-process moto (the default is ``s3_obstore``).

Endpoint and credentials come only from botocore's own chain (the one boto3 uses: ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, profiles...). Retries are botocore's; multipart is s3transfer's, imported
only when a blob is large enough to need it (importing it costs every CLI call ~50 ms).
Conditional writes use ``If-None-Match: *`` and ``If-Match: <etag>``; since some servers
silently ignore them, ``check_ready`` proves on first use that they are enforced.

An endpoint that has never answered is not retried (a refused connection fails at once, with
what to check); once it has answered, botocore's retries ride out brief outages, and a wait
that outlasts the first retry is announced on the ``registry`` logger.
"""
from __future__ import annotations

import base64
import builtins
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from .base import Backend, ObjectInfo
from .errors import AccessDenied, ContentMismatch, PreconditionFailed, StorageUnavailable
from .s3_client import filter_library_loggers, make_client
from .s3_common import (
    ANNOUNCE_FROM_ATTEMPT,
    FORBIDDEN_CODES,
    MAX_ATTEMPTS,
    ProbedOnce,
    denied,
    no_bucket,
    no_credentials,
    permission_message,
    unreachable,
    waiting_message,
)
from .s3_streams import HashedInOrder, ProgressSubscriber, SentBytes, changed_message

MULTIPART_THRESHOLD = 16 * 1024 * 1024
SINGLE_REQUEST_MAX = 64 * 1024 * 1024
"""Up to this size a blob moves in one streamed PUT/GET: no multipart set-up, no part checksums."""
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
_CHUNK = 1 << 20
_log = logging.getLogger("registry")
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_CHECKSUM_REFUSED = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
_DENIED = {
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"
}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) or str(
        error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


class S3Backend(ProbedOnce, Backend):
    """Objects under ``s3://bucket/prefix``."""

    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or make_client()
        self.endpoint = self.client.meta.endpoint_url
        self.answered = False
        """Whether the endpoint has answered any request yet: until then, failures are not retried."""
        self.client.meta.events.register_first("needs-retry.s3", self._before_retry)

    def _before_retry(
        self, response=None, caught_exception=None, attempts: int = 1, request_dict=None, **_kwargs
    ):
        """botocore's retry hook, consulted before its own: veto retries against an endpoint
        that never answered (False); announce a long wait; otherwise leave the choice to botocore (None)."""
        if response is not None:
            self.answered = True
            status = response[0].status_code if response[0] is not None else 0
            if status < 500 and status != 429:
                return None
            reason = f"HTTP {status}"
        elif isinstance(caught_exception, EndpointUnreachable) and not self.answered:
            return False
        elif caught_exception is not None:
            reason = type(caught_exception).__name__
        else:
            return None
        context = (request_dict or {}).get("context", {})
        long_wait = ANNOUNCE_FROM_ATTEMPT <= attempts < MAX_ATTEMPTS
        if long_wait and not context.get("registry_announced"):
            context["registry_announced"] = True
            _log.warning(waiting_message(self.endpoint, reason))
        return None

    @contextmanager
    def _transfers(self):
        """s3transfer's multipart manager for one large blob (imported only when one comes)."""
        from s3transfer.manager import TransferConfig, TransferManager

        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_request_concurrency=10,
            max_io_queue_size=64,  # 256 KiB writes waiting for the disk: bounds memory (default 1000)
        )
        with TransferManager(self.client, config) as manager:
            filter_library_loggers()  # s3transfer's loggers exist only now
            yield manager

    # -- errors ----------------------------------------------------------------------------
    def _translate(self, error: Exception, key: str) -> Exception:
        """Turn a botocore error into a builtin or backend error with a one-line message."""
        where = f"{self.url} at {self.endpoint}"
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return no_credentials(where)
        if isinstance(error, ClientError):
            code = _code(error)
            if code == "NoSuchBucket":
                return no_bucket(self.bucket, self.endpoint)
            if code in _MISSING:
                return FileNotFoundError(f"{key} not found in {self.url}")
            if code in _LOST_RACE:
                return PreconditionFailed(f"{key} changed since it was read")
            if code in FORBIDDEN_CODES:
                return AccessDenied(permission_message(error.operation_name or "request", key, self.url))
            if code in _DENIED:
                return denied(where, code)
            return StorageUnavailable(f"S3 request for {key} in {where} failed ({code})")
        if isinstance(error, EndpointUnreachable) and not self.answered:
            return unreachable(self.endpoint, self.url, type(error).__name__)
        return StorageUnavailable(
            f"cannot reach {where} ({type(error).__name__}): check AWS_ENDPOINT_URL and the network"
        )

    def _translate_transfer(self, error: Exception, key: str) -> Exception:
        """A failure inside s3transfer: botocore's error itself, or one it wraps (retries exhausted)."""
        cause = error.__cause__ or error.__context__ or getattr(error, "last_exception", None)
        for candidate in (error, cause):
            if isinstance(candidate, (ClientError, BotoCoreError)):
                return self._translate(candidate, key)
        if isinstance(error, OSError):
            return error  # a local disk problem (or already ours), not a botocore one
        return StorageUnavailable(
            f"transfer of {key} with {self.url} at {self.endpoint} failed ({type(error).__name__}: {error})"
        )

    def _call(self, key: str, method: str, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, Key=self.prefix + key, **kwargs)
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, key) from None

    # -- reads -----------------------------------------------------------------------------
    def read(self, key: str) -> bytes:
        return self.read_with_token(key)[0]

    def read_with_token(self, key: str) -> tuple[bytes, str]:
        response = self._call(key, "get_object")
        try:
            return response["Body"].read(), response["ETag"]
        except (BotoCoreError, OSError) as e:
            raise self._translate(e, key) from None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        response = self._call(key, "get_object", Range=f"bytes={start}-{end - 1}")
        try:
            return response["Body"].read()
        except (BotoCoreError, OSError) as e:
            raise self._translate(e, key) from None

    def read_to_file(self, key: str, path: Path, size: int | None = None, hasher=None) -> bool:
        """Returns True when ``hasher`` was fed every byte written, in order.

        One streamed GET unless ``size`` says the object is large (file lists, of unknown
        size, are small); large ones come in parallel ranged parts through s3transfer.
        """
        if size is None or size <= SINGLE_REQUEST_MAX:
            response = self._call(key, "get_object")
            try:
                with open(path, "wb", buffering=0) as out:  # chunks are large: no buffer, no seek
                    for chunk in response["Body"].iter_chunks(_CHUNK):
                        view = memoryview(chunk)
                        while view:
                            view = view[out.write(view) :]
                        if hasher is not None:
                            hasher.update(chunk)
            except BotoCoreError as e:
                raise self._translate(e, key) from None
            return hasher is not None
        try:
            with open(path, "wb+") as out, self._transfers() as manager:  # read back to hash
                followed = HashedInOrder(out.fileno(), hasher)
                try:
                    manager.download(self.bucket, self.prefix + key, followed).result()
                finally:
                    followed.finish()
        except Exception as e:
            raise self._translate_transfer(e, key) from None
        return hasher is not None

    def stat(self, key: str) -> ObjectInfo:
        response = self._call(key, "head_object")
        modified = response["LastModified"].timestamp()
        return ObjectInfo(key, response["ContentLength"], response["ETag"], modified)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    yield ObjectInfo(key, item["Size"], item["ETag"], item["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, prefix) from None

    def list_children(self, prefix: str, start_after: str | None = None) -> builtins.list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        names = []
        full_prefix = self.prefix + prefix
        # Keys after prefix+start_after: every name greater than it, and that name itself (dropped below).
        after = {"StartAfter": full_prefix + start_after} if start_after is not None else {}
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix, Delimiter="/", **after):
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"][len(full_prefix) :].rstrip("/"))
        except (ClientError, BotoCoreError) as e:
            raise self._translate(e, prefix) from None
        return sorted(n for n in names if start_after is None or n > start_after)

    # -- writes ----------------------------------------------------------------------------
    def write(self, key: str, data: bytes | memoryview, sha256: str | None = None) -> None:
        body = data if isinstance(data, bytes) else bytes(data)  # botocore takes no memoryview
        self._call(key, "put_object", Body=body, ChecksumSHA256=_b64(sha256 or _sha256(body)))

    def write_file(self, key: str, path: Path, sha256: str | None = None, progress=None) -> None:
        """The body is read through ``SentBytes``: the size the file had now, hashed as it is sent.

        A single PUT carries ``sha256`` for the server to check, and is also checked against the
        hash of what was sent (for servers that ignore the header). A multipart upload can only
        have its parts checked by the server, so the whole object is hashed as s3transfer reads
        it, in order, and the read that ends it refuses a mismatch: s3transfer then aborts the
        upload before completing it.
        """
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size <= SINGLE_REQUEST_MAX:
                self._put_file(key, SentBytes(file, size), path, sha256)
                if progress:
                    progress(size)
            else:
                self._upload_parts(key, SentBytes(file, size, refuse=sha256, name=str(path)), progress)

    def _put_file(self, key: str, body: SentBytes, path: Path, sha256: str | None) -> None:
        extra = {"ChecksumSHA256": _b64(sha256)} if sha256 else {}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=body, **extra)
        except ClientError as e:
            if sha256 and _code(e) in _CHECKSUM_REFUSED:
                raise ContentMismatch(changed_message(path, sha256)) from None
            raise self._translate(e, key) from None
        except BotoCoreError as e:
            raise self._translate(e, key) from None
        if sha256 and body.sha256() != sha256:  # a server that ignores the checksum stored it
            self._take_back(key, response["ETag"], path, sha256)

    def _upload_parts(self, key: str, body: SentBytes, progress) -> None:
        try:
            with self._transfers() as manager:
                subscribers = [ProgressSubscriber(progress)] if progress else None
                manager.upload(
                    body,
                    self.bucket,
                    self.prefix + key,
                    extra_args={"ChecksumAlgorithm": "SHA256"},
                    subscribers=subscribers,
                ).result()
        except ContentMismatch:
            raise
        except Exception as e:
            raise self._translate_transfer(e, key) from None
        # only if s3transfer stopped reading its body in order
        if body.refuse and body.sha256() != body.refuse:
            self._take_back(key, self.stat(key).token, body.name, body.refuse)

    def _take_back(self, key: str, token: str, path, sha256: str) -> None:
        """Delete our own upload of bytes that do not match ``sha256`` (unless replaced since), and refuse."""
        try:
            self.delete_if_match(key, token)
        except (PreconditionFailed, StorageUnavailable):
            pass  # replaced meanwhile by another writer's upload, which is not ours to delete
        raise ContentMismatch(changed_message(path, sha256))

    def write_if_absent(self, key: str, data: bytes) -> str:
        try:
            response = self._call(
                key, "put_object", Body=data, IfNoneMatch="*", ChecksumSHA256=_b64(_sha256(data))
            )
            return response["ETag"]
        except PreconditionFailed:
            raise FileExistsError(f"{key} already exists in {self.url}") from None

    def write_if_match(self, key: str, data: bytes, token: str) -> str:
        try:
            response = self._call(
                key, "put_object", Body=data, IfMatch=token, ChecksumSHA256=_b64(_sha256(data))
            )
            return response["ETag"]
        except FileNotFoundError:
            raise PreconditionFailed(f"{key} was deleted since it was read") from None

    def delete(self, key: str) -> None:
        self._call(key, "delete_object")

    def delete_if_match(self, key: str, token: str) -> None:
        try:
            self._call(key, "delete_object", IfMatch=token)
        except FileNotFoundError:
            raise PreconditionFailed(f"{key} was deleted since it was read") from None



def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


