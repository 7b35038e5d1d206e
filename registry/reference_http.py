"""``http(s)://`` references: one URL, described by its ETag, Last-Modified and size (a HEAD), or
with ``checksum`` by its content's sha256 too (a GET, hashed as it streams).

A download checks the server's ETag and Last-Modified against those recorded before reading
the body. URLs that carry credentials (``user:pass@``, a pre-signed query) are refused: the
file list would keep them.
"""
from __future__ import annotations

import urllib.error
import urllib.request
from typing import IO
from urllib.parse import urlparse

from .errors import InvalidNameError, NotFoundError, PermissionDenied, StorageError
from .records import FileEntry
from .reference_entries import Found, artifact_path, check_metadata, hash_stream

TIMEOUT = 60
_SIGNED = ("x-amz-signature", "x-amz-credential", "signature=", "sig=", "token=")


class HttpSource:
    """Files served over HTTP(S) by anyone: nothing is listed, one URL is one file."""

    def find(self, uri: str, name: str | None, checksum: bool, max_objects: int) -> list[Found]:
        check_uri(uri)
        path = artifact_path(name, None, urlparse(uri).path.rstrip("/").rsplit("/", 1)[-1] or "index.html")
        with _request(uri, "GET" if checksum else "HEAD", uri) as response:
            headers = response.headers
            sha256, size = hash_stream(response) if checksum else (None, _length(headers))
        if size is None:  # no Content-Length: the size is known only by reading the body
            with _request(uri, "GET", uri) as response:
                size = hash_stream(response)[1]
        return [Found(path=path, uri=uri, size=size, etag=_etag(headers.get("ETag")),
                      last_modified=headers.get("Last-Modified"), sha256=sha256)]

    def open(self, entry: FileEntry) -> IO[bytes]:
        assert entry.ref is not None
        response = _request(entry.ref.uri, "GET", f"reference {entry.path!r} ({entry.ref.uri})")
        try:
            check_metadata(entry, _etag(response.headers.get("ETag")), response.headers.get("Last-Modified"))
        except BaseException:
            response.close()
            raise
        return response


def check_uri(uri: str) -> None:
    """Refuse a URL that would put a credential into the file list."""
    parsed = urlparse(uri)
    if "@" in parsed.netloc or any(mark in parsed.query.lower() for mark in _SIGNED):
        raise InvalidNameError(
            f"refusing to reference {parsed.scheme}://{parsed.hostname}/...: the URL carries a credential "
            "(user:password@ or a signed query) that the file list would keep; use a URL without one"
        )


def _request(uri: str, method: str, what: str):
    try:
        return urllib.request.urlopen(urllib.request.Request(uri, method=method), timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            raise NotFoundError(f"{what} does not exist (any more): HTTP {e.code}") from None
        if e.code in (401, 403):
            raise PermissionDenied(f"permission denied: {what} answered HTTP {e.code}") from None
        raise StorageError(f"{what} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise StorageError(f"cannot reach {what}: {getattr(e, 'reason', e)}") from None


def _length(headers) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _etag(value: str | None) -> str | None:
    return value.strip().removeprefix("W/").strip('"') if value else None
