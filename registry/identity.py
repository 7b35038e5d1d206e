"""Who is acting: the host, the OS user and, where the store can tell, its caller identity.

The caller identity comes from STS ``GetCallerIdentity`` through boto3's standard credential
chain (the chain the S3 store uses). It is best effort: a store that does not implement STS
(SeaweedFS, MinIO), no network, or no credentials give ``None`` -- never an error -- and the
answer is asked once per process and store.
"""
from __future__ import annotations

import functools
import getpass
import logging
import socket

from .records import Actor

logger = logging.getLogger("registry")
STS_TIMEOUT_SECONDS = 3
"""Connect and read timeouts of the one STS call, which is tried once (no retries)."""


def current_actor(store_url: str) -> Actor:
    """This process acting on the store at ``store_url``.

    >>> current_actor("/tmp/store").identity is None
    True
    """
    return Actor(host=socket.gethostname(), user=_os_user(), identity=caller_identity(store_url))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


@functools.lru_cache(maxsize=8)
def caller_identity(store_url: str) -> str | None:
    """The ARN STS reports for an S3 store's credentials; None for a local store or when STS
    cannot answer."""
    if not store_url.startswith("s3://"):
        return None
    try:
        import boto3  # only S3 stores pay for it, and they have imported it already
        from botocore.config import Config

        config = Config(connect_timeout=STS_TIMEOUT_SECONDS, read_timeout=STS_TIMEOUT_SECONDS,
                        retries={"max_attempts": 1, "mode": "standard"})
        session = boto3.Session()
        answer = session.client("sts", config=config).get_caller_identity()
        credentials = session.get_credentials()
        key_id = credentials.access_key if credentials is not None else None
    except Exception as e:  # best effort by design: the audit entry names host and user anyway
        logger.debug("registry: no caller identity from STS (%s)", type(e).__name__)
        return None
    arn = answer.get("Arn")
    if not isinstance(arn, str) or (key_id and key_id in arn):  # a server echoing the key: never stored
        return None
    return arn
