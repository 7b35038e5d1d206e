"""Configuration, read from the environment in this one place.

============================  ==========================================================
``REGISTRY_URL``              the store: ``s3://bucket/prefix``, ``file:///path`` or a path
``REGISTRY_PROJECT``          default project for runs and addresses
``REGISTRY_CACHE_DIR``        download cache and hash database
``REGISTRY_CACHE_MAX``        cache size limit, e.g. ``20GB`` (unset: no limit)
``REGISTRY_LINK_MODE``        how cached files reach a download root: auto|reflink|hardlink|copy
``REGISTRY_WORKERS``          parallel transfers (default 16)
``REGISTRY_S3_ENGINE``        obstore (default) or botocore: read by ``backends.open_backend``
``REGISTRY_MODE``             ``online`` (default) or ``offline``: log to a local outbox, read what was seen
``REGISTRY_REFERENCE_ENDPOINTS``  ``bucket=url,...``: the S3 endpoint of a referenced bucket
                              that is not at the store's (``add_reference``)
============================  ==========================================================
S3 endpoint and credentials are boto3's own (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``...).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel

from .errors import InvalidNameError
from .sizes import parse_size

DISTRIBUTION = "ml-artifact-registry"
"""The name to pip-install (the import package and the command are ``registry``)."""
DEFAULT_PROJECT = "uncategorized"
LinkMode = Literal["auto", "reflink", "hardlink", "copy"]
_LINK_MODES: tuple[LinkMode, ...] = ("auto", "reflink", "hardlink", "copy")
Mode = Literal["online", "offline"]
_MODES: tuple[Mode, ...] = ("online", "offline")
DEFAULT_FORMAT = 2


class Settings(BaseModel):
    url: str
    project: str
    cache_dir: Path
    cache_max: int | None
    link_mode: LinkMode
    workers: int
    mode: Mode = "online"
    reference_endpoints: dict[str, str] = {}
    """Bucket -> S3 endpoint URL for references to buckets served elsewhere than the store."""
    store_format: int = 1
    """The format new versions are written in (``REGISTRY_FORMAT``); both are always read."""

    @classmethod
    def from_env(cls, url: str | None = None, mode: str | None = None) -> Settings:
        env = os.environ
        mode = mode or env.get("REGISTRY_MODE") or "online"
        if mode not in _MODES:
            raise InvalidNameError(f"mode {mode!r} (REGISTRY_MODE) is not one of online, offline")
        link_mode = env.get("REGISTRY_LINK_MODE", "auto")
        if link_mode not in _LINK_MODES:
            raise InvalidNameError(
                f"REGISTRY_LINK_MODE={link_mode!r} is not one of auto, reflink, hardlink, copy"
            )
        return cls(
            url=url or env.get("REGISTRY_URL") or str(default_store_dir()),
            project=env.get("REGISTRY_PROJECT") or DEFAULT_PROJECT,
            cache_dir=Path(env.get("REGISTRY_CACHE_DIR") or platformdirs.user_cache_dir("registry")),
            cache_max=parse_size(env["REGISTRY_CACHE_MAX"]) if env.get("REGISTRY_CACHE_MAX") else None,
            link_mode=link_mode,
            workers=int(env.get("REGISTRY_WORKERS") or 16),
            mode=mode,
            reference_endpoints=parse_endpoints(env.get("REGISTRY_REFERENCE_ENDPOINTS", "")),
            store_format=parse_format(env.get("REGISTRY_FORMAT", "")),
        )


def parse_format(text: str) -> int:
    """``REGISTRY_FORMAT``: 1 (a blob per file, one file list) or 2 (packs, chunks, manifest pages)."""
    if text.strip() in ("", "1", "2"):
        return int(text.strip() or DEFAULT_FORMAT)
    raise InvalidNameError(
        f"REGISTRY_FORMAT={text!r} is not 1 or 2 (the store format new versions are written in)")


def parse_endpoints(text: str) -> dict[str, str]:
    """``"raw=http://10.0.0.5:8333,logs=https://s3.eu-west-1.amazonaws.com"`` -> bucket -> endpoint."""
    endpoints = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        bucket, _, url = item.partition("=")
        if not bucket.strip() or not re.match(r"https?://[^/@\s]+/?$", url.strip()):
            raise InvalidNameError(
                f"REGISTRY_REFERENCE_ENDPOINTS entry {item!r} is not bucket=http(s)://host[:port]; "
                "e.g. raw-data=http://10.0.0.5:8333"
            )
        endpoints[bucket.strip()] = url.strip().rstrip("/")
    return endpoints


def default_store_dir() -> Path:
    """The embedded default store: ``$XDG_DATA_HOME/registry`` (``~/.local/share/registry``)."""
    return Path(platformdirs.user_data_dir("registry"))
