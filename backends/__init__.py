"""Storage backends: the same few primitives on S3 and on a local directory."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from .base import Backend, ObjectInfo
from .errors import (
    AccessDenied,
    ConditionalWritesUnsupported,
    ContentMismatch,
    PreconditionFailed,
    StorageUnavailable,
)

__all__ = [
    "AccessDenied",
    "Backend",
    "ConditionalWritesUnsupported",
    "ContentMismatch",
    "ObjectInfo",
    "PreconditionFailed",
    "StorageUnavailable",
    "open_backend",
]


S3_ENGINES = ("obstore", "botocore")
"""``REGISTRY_S3_ENGINE``: obstore (the default, fast) or botocore (what in-process moto intercepts)."""


def _s3_backend(bucket: str, prefix: str) -> Backend:
    """The S3 engine named by ``REGISTRY_S3_ENGINE``, read here beside the AWS_* variables the
    engines read; each is imported only when used (botocore costs ~0.27 s to start)."""
    engine = os.environ.get("REGISTRY_S3_ENGINE") or "obstore"
    if engine == "obstore":
        from .s3_obstore import ObstoreS3Backend

        return ObstoreS3Backend(bucket, prefix)
    if engine == "botocore":
        from .s3 import S3Backend

        return S3Backend(bucket, prefix)
    raise ValueError(f"REGISTRY_S3_ENGINE={engine!r} is not one of {', '.join(S3_ENGINES)}")


def open_backend(url: str) -> Backend:
    """Open the store addressed by ``url``: ``s3://bucket/prefix``, ``file:///path`` or a path."""
    parsed = urlparse(url)
    if "@" in parsed.netloc:
        raise ValueError(
            "the store URL holds credentials ('user:secret@'): remove them and use "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"store URL {url!r} names no bucket: use s3://bucket[/prefix]")
        return _s3_backend(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme in ("", None) or len(parsed.scheme) == 1:  # plain path (or a drive letter)
        path = Path(url).expanduser()
    else:
        raise ValueError(
            f"store URL {url!r} has unsupported scheme {parsed.scheme!r}: use s3:// or a local path"
        )
    from .local import LocalBackend  # lazily, like the S3 backend above

    return LocalBackend(path)
