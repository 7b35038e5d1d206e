"""Errors as pages: a missing or invalid name is 404, a damaged record 500, an unreachable store 503."""
from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import HTTPException

from ..errors import IntegrityError, RegistryError, StorageError

Page = tuple[str, int] | tuple[str, int, dict[str, str]]


def not_found(error: RegistryError) -> Page:
    return render_template("error.html", code=404, title="Not found", message=str(error)), 404


def damaged(error: IntegrityError) -> Page:
    page = render_template("error.html", code=500, title="Store contents are damaged", message=str(error))
    return page, 500


def unavailable(error: StorageError) -> Page:
    return render_template("error.html", code=503, title="Store unavailable", message=str(error)), 503


def http_error(error: HTTPException) -> Page:
    if error.code == 405:
        page = render_template("error.html", code=405, title="Read-only",
                               message="This UI only reads: use GET.")
        return page, 405, {"Allow": "GET, HEAD"}
    page = render_template("error.html", code=error.code, title=error.name, message=error.description)
    return page, error.code or 500
