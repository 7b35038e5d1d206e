"""The botocore S3 client the backend talks through: its configuration, and credentials kept
out of every log line.

Endpoint and credentials come only from botocore's own chain (the one boto3 uses:
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, profiles...).
"""
from __future__ import annotations

import atexit
import gc
import logging
from urllib.parse import urlparse

import botocore.session
from botocore.config import Config

from .s3_common import CONNECT_TIMEOUT, MAX_ATTEMPTS

MAX_POOL_CONNECTIONS = 64


def client_config(path_style: bool) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=60,
        # Every PUT carries a signed x-amz-checksum-sha256 header that the server checks, so
        # botocore need not hash each body a second time for SigV4 on plain-http endpoints.
        s3=(
            {"addressing_style": "path", "payload_signing_enabled": False}
            if path_style
            else {"payload_signing_enabled": False}
        ),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


class _RedactCredentials(logging.Filter):
    """Blank the key id, secret and token out of botocore's own (debug) log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, ()
        return True


_REDACT = _RedactCredentials()
_EXIT_HOOK: list[bool] = []


def _redact_credentials_in_logs(session: botocore.session.Session) -> None:
    credentials = session.get_credentials()
    if credentials is None:
        return
    frozen = credentials.get_frozen_credentials()
    _REDACT.secrets.update(s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s)
    filter_library_loggers()


def filter_library_loggers() -> None:
    """Attach the redacting filter to every botocore/boto3/s3transfer/urllib3 logger created so far."""
    for name in list(logging.Logger.manager.loggerDict):
        if name.split(".")[0] in ("botocore", "boto3", "s3transfer", "urllib3"):
            logger = logging.getLogger(name)
            if _REDACT not in logger.filters:
                logger.addFilter(_REDACT)


def _skip_final_collection() -> None:
    """A botocore client leaves ~0.5 M objects that the interpreter's last garbage collection
    walks at exit (~0.1 s per CLI call here); frozen, they are skipped. Runs only at exit."""
    gc.freeze()


def make_client():
    """An S3 client from the standard chain; path-style addressing off AWS (MinIO, SeaweedFS...)."""
    if not _EXIT_HOOK:
        atexit.register(_skip_final_collection)
        _EXIT_HOOK.append(True)
    session = botocore.session.get_session()
    _redact_credentials_in_logs(session)
    client = session.create_client("s3", config=client_config(path_style=True))
    host = urlparse(client.meta.endpoint_url).hostname or ""
    if host.endswith("amazonaws.com"):  # AWS itself: virtual-hosted addressing
        return session.create_client("s3", config=client_config(path_style=False))
    return client


def make_client_at(endpoint_url: str | None):
    """``make_client``'s client, at another endpoint when given (a referenced bucket served elsewhere).

    Credentials still come from the standard chain; only the endpoint differs.
    """
    if endpoint_url is None:
        return make_client()
    session = botocore.session.get_session()
    _redact_credentials_in_logs(session)
    path_style = not (urlparse(endpoint_url).hostname or "").endswith("amazonaws.com")
    return session.create_client("s3", endpoint_url=endpoint_url, config=client_config(path_style=path_style))
