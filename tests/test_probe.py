"""The capability probe refuses an S3 server that silently ignores conditional writes."""
from __future__ import annotations

import pytest

import registry
from backends import ConditionalWritesUnsupported, open_backend
from backends.s3 import S3Backend
from helpers import log_files
from store_fixtures import proxy_of


def _strip_conditional_headers(request, **kwargs) -> None:
    for header in ("If-None-Match", "If-Match"):
        if header in request.headers:
            del request.headers[header]


@pytest.mark.parametrize("store_url", ["moto", "seaweed"], indirect=True)
def test_probe_refuses_a_server_ignoring_conditional_headers(store_url: str) -> None:
    bucket, prefix = store_url[5:].split("/", 1)
    backend = S3Backend(bucket, prefix)
    backend.client.meta.events.register("before-sign.s3.PutObject", _strip_conditional_headers)
    with pytest.raises(ConditionalWritesUnsupported, match="ignores If-None-Match"):
        backend.check_ready()
    assert list(backend.list("_probe/")) == []  # nothing left behind


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_probe_refuses_a_server_ignoring_conditional_headers_through_obstore(store_url: str) -> None:
    proxy = proxy_of(store_url)
    proxy.rule = lambda request: "ignore-conditions"
    backend = open_backend(store_url)
    with pytest.raises(ConditionalWritesUnsupported, match="ignores If-None-Match"):
        backend.check_ready()
    assert "ignored-412" in proxy.faults
    assert list(backend.list("_probe/")) == []  # nothing left behind


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_logging_refuses_before_writing_anything(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.store import open_store

    store = open_store(store_url)
    store.backend._inner.client.meta.events.register("before-sign.s3.PutObject", _strip_conditional_headers)
    with pytest.raises(registry.StorageError, match="conditional writes"):
        log_files("data", {"a": b"1"})
    assert [i.key for i in store.backend.list("projects/proj/artifacts/")] == []
