"""What every command shares: the global options, the store opened on first use, and where output goes.

Results go to stdout (``out``, ``emit_json``); notes go to stderr and ``-q`` silences them; a
progress bar is drawn on stderr only when it is a terminal. ``--json`` and ``-q`` work both
globally (``registry --json ls``) and after a subcommand (``registry ls --json``).
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..names import validate_name
from .shapes import json_default

if TYPE_CHECKING:
    from ..api import Api

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """The global options; ``api`` opens the store only when a command first needs it."""

    url: str | None = None
    project: str | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    offline: bool = False
    _api: Api | None = field(default=None, repr=False)

    @property
    def api(self) -> Api:
        if self._api is None:
            from ..api import Api  # the library's models load when a command first needs the store

            self._api = Api(self.url, mode=self.mode)
            if self.project:
                self._api.default_project = validate_name(self.project, "project")
        return self._api

    @property
    def mode(self) -> str | None:
        """``offline`` with ``--offline``; otherwise REGISTRY_MODE decides."""
        return "offline" if self.offline else None

    @property
    def default_project(self) -> str:
        """``--project``, else REGISTRY_PROJECT's default: known without opening the store (push
        creates it)."""
        if self.project:
            return validate_name(self.project, "project")
        from ..settings import Settings  # pydantic: loaded by the commands that use it

        return Settings.from_env(self.url).project

    def out(self, text: str = "") -> None:
        """Primary output (stdout)."""
        click.echo(text)

    def note(self, text: str) -> None:
        """Informational output (stderr), silenced by ``-q``."""
        if not self.quiet:
            click.echo(text, err=True)

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, sort_keys=False, default=json_default, ensure_ascii=False))

    @contextmanager
    def progress(self, total: int | None, desc: str) -> Iterator[Callable[[int], object] | None]:
        """Yield a bar's ``update(nbytes)`` while the body runs; None when no bar is drawn (``-q``,
        not a tty)."""
        if self.quiet or not _stderr_is_tty():
            yield None
            return
        # imported here, not at the top: only a transfer on a terminal draws a bar
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                   leave=False, **_terminal_size())
        try:
            yield bar.update
        finally:
            bar.close()


def _terminal_size() -> dict[str, int]:
    """tqdm's ncols/nrows; a pty nobody sized reports 0 x 0, which would make tqdm draw nothing."""
    try:
        columns, lines = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        columns, lines = 0, 0
    return {"ncols": columns or 80, "nrows": lines or 24}


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


pass_state = click.make_pass_decorator(State, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).json = True


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).quiet = True


def json_option(func: F) -> F:
    """``--json`` and ``-q`` on a subcommand: the same as the global ``registry --json`` / ``-q``."""
    func = click.option("-q", "--quiet", "quiet_flag", is_flag=True, expose_value=False, callback=_set_quiet,
                        help="Same as registry -q.")(func)
    return click.option("--json", "json_flag", is_flag=True, expose_value=False, callback=_set_json,
                        help="Print JSON (shape documented in docs/CLI.md).")(func)
