"""The local web UI: ``registry ui`` serves read-only pages over a store (see docs/UI.md).

>>> from registry.ui import create_app        # doctest: +SKIP
>>> create_app("/path/to/store").run()       # doctest: +SKIP
"""
from __future__ import annotations

import sys

from ..errors import RegistryError
from .app import create_app
from .safety import LOOPBACK_NAMES, is_loopback

__all__ = ["create_app", "serve"]


def serve(url: str | None = None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the UI for ``url`` until interrupted; binds to loopback unless ``host`` says otherwise."""
    from werkzeug.serving import make_server  # the server only when serving: tests build the app alone

    local = is_loopback(host.strip("[]"))
    app = create_app(url, allowed_hosts=LOOPBACK_NAMES if local else None)
    try:
        server = make_server(host.strip("[]"), port, app, threaded=True)
    except OSError as e:
        raise RegistryError(
            f"the web UI cannot listen on {host}:{port}: {e.strerror or e}; choose another --port or --host"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    print(f"registry ui: {app.config['REGISTRY_API'].url} at http://{shown}:{server.port}/ (Ctrl-C to stop)",
          file=sys.stderr)
    if not local:
        print(f"registry ui: warning: listening on {host}, so anyone who can reach it can read this store",
              file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
