"""Request checks and response headers that keep a read-only UI from being used against its user.

Only GET and HEAD are served; the ``Host`` header must name an allowed host (loopback by
default, which stops a DNS-rebinding page from reading the store through a browser); every
response forbids scripts from elsewhere, framing and content sniffing (see docs/UI.md).
"""
from __future__ import annotations

import ipaddress

from flask import Response, abort, current_app, request

ALLOWED_HOSTS_KEY = "REGISTRY_UI_ALLOWED_HOSTS"
"""App config: the ``Host`` names accepted (a frozenset of lower-case names), or None for any."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def host_name(host: str) -> str:
    """``example:8080`` -> ``example``, ``[::1]:8080`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_unsafe_requests() -> None:
    """Before every request: 405 unless GET or HEAD, 400 unless the ``Host`` is allowed."""
    if request.method not in ("GET", "HEAD"):
        abort(405)
    allowed = current_app.config.get(ALLOWED_HOSTS_KEY)
    if allowed is not None:
        name = host_name(request.host.lower())
        if name not in allowed and not ("127.0.0.1" in allowed and is_loopback(name)):
            abort(400, description=f"host {name!r} is not allowed: open the UI at http://127.0.0.1 or http://localhost")


def add_security_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response
