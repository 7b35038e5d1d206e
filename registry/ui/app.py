"""``create_app``: a Flask app serving the ``ui`` blueprint over one store, read through ``registry.Api``."""
from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from ..api import Api
from .safety import ALLOWED_HOSTS_KEY, LOOPBACK_NAMES
from .views import API_KEY, PAGE_SIZE, PAGE_SIZE_KEY, bp


def create_app(url: str | None = None, api: Api | None = None, *,
               allowed_hosts: Iterable[str] | None = LOOPBACK_NAMES, page_size: int = PAGE_SIZE) -> Flask:
    """The web UI for the store at ``url`` (or ``REGISTRY_URL``, or the local default), or for ``api``.

    Every page is read-only (GET and HEAD only). ``allowed_hosts`` are the names the
    ``Host`` header may carry (default: loopback only, which stops DNS-rebinding pages from
    reading the store through a browser); ``None`` accepts any host.

    >>> create_app("/path/to/store").test_client().get("/").status_code   # doctest: +SKIP
    200
    """
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config[API_KEY] = api or Api(url)
    hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
    app.config[ALLOWED_HOSTS_KEY] = hosts
    app.config[PAGE_SIZE_KEY] = page_size
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.register_blueprint(bp)
    return app
