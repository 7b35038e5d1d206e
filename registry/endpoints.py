"""Opening a store with its own S3 endpoint and credentials profile, for commands that talk to two
stores at once (``registry copy``): each side may live on another server with other keys.

Without ``endpoint`` or ``profile`` a store opens as usual (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``...).
"""
from __future__ import annotations

from urllib.parse import urlparse

from .errors import InvalidNameError, StorageError
from .settings import Settings
from .store import Store, open_store


def open_side(url: str, endpoint: str | None = None, profile: str | None = None) -> Store:
    """The store at ``url``, its S3 client built for ``endpoint`` and ``profile`` when given.

    >>> open_side("s3://lab/ml", endpoint="http://10.0.0.5:8333", profile="lab")   # doctest: +SKIP
    """
    if endpoint is None and profile is None:
        return open_store(url, "online")
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InvalidNameError(f"an endpoint or profile applies to s3:// stores only, not {url!r}")
    from backends.s3 import S3Backend  # botocore is imported only for S3 stores

    return Store(Settings.from_env(url, "online"),
                 backend=S3Backend(parsed.netloc, parsed.path.strip("/"), client=_client(endpoint, profile)))


def _client(endpoint: str | None, profile: str | None):
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    from backends.s3_client import client_config

    try:
        session = botocore.session.Session(profile=profile)
        if session.get_credentials() is None:
            raise StorageError(f"no credentials for profile {profile!r}: add them to ~/.aws/credentials")
    except ProfileNotFound:
        raise StorageError(f"AWS profile {profile!r} is not configured: add it to ~/.aws/config") from None
    host = urlparse(endpoint or "").hostname or ""
    return session.create_client("s3", endpoint_url=endpoint,
                                 config=client_config(path_style=not host.endswith("amazonaws.com")))
