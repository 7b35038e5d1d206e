"""``registry ui``: serve the web UI (the optional ``[ui]`` extra)."""
from __future__ import annotations

import click

from ..errors import RegistryError
from ..settings import DISTRIBUTION
from .state import State, pass_state


@click.command("ui", short_help="Serve the web UI.")
@click.option("--url", "ui_url", metavar="URL",
              help="Store to browse (default: the global --url / REGISTRY_URL).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@pass_state
def ui_cmd(state: State, ui_url: str | None, host: str, port: int) -> None:
    """Browse projects, artifacts, runs and lineage in a web browser."""
    try:
        # imported here, not at the top: Flask costs ~140 ms at start-up and is an optional extra
        from .. import ui
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        raise RegistryError(
            f"the web UI cannot start: {missing} is not installed; pip install '{DISTRIBUTION}[ui]'"
        ) from None
    ui.serve(url=ui_url or state.url, host=host, port=port)
