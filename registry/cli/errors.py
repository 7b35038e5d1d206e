"""How a failing command ends: one line on stderr, ``registry: error: <what to do>``, and an exit code.

A library error exits with its class's code (``RegistryError.exit_code``, see ``registry.errors``);
anything the library did not mean to raise still becomes one line, never a raw traceback.
``--debug`` (or REGISTRY_DEBUG) prints the traceback as well.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import IO, Any

import click

from ..errors import RegistryError, StorageError
from .state import State

EXIT_INTERRUPTED = 130
EXIT_UNEXPECTED = 10

# Exceptions from these come from a storage request, whatever their class.
_STORAGE_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")


class CliError(click.ClickException):
    """An error shown as one line, ``registry: error: <message>``, exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code  # type: ignore[misc]  # click declares a class-wide code; ours varies

    def show(self, file: IO[Any] | None = None) -> None:  # click's signature; the line always goes to stderr
        click.echo(f"registry: error: {self.format_message()}", err=True)


def one_line(message: object) -> str:
    """Collapse a (possibly multi-line) message so the error stays one line."""
    return " ".join(str(message).split()) or "unknown error"


def unexpected_error(error: BaseException) -> CliError:
    """A CliError for an exception the library did not mean to raise (never a raw traceback)."""
    name = type(error).__name__
    if (type(error).__module__ or "").startswith(_STORAGE_LIBRARIES):
        return CliError(f"storage request failed ({name}: {error}): check REGISTRY_URL, AWS_ENDPOINT_URL "
                        "and the credentials", StorageError.exit_code)
    if isinstance(error, OSError) and error.filename is not None:
        return CliError(f"{error.strerror or error}: {error.filename}", EXIT_UNEXPECTED)
    return CliError(f"unexpected {name}: {error} (run with --debug for the traceback)", EXIT_UNEXPECTED)


class RegistryGroup(click.Group):
    """A group that lists commands in definition order and turns every exception into one line.

    ``lazy`` names commands by ``"module:attribute"``: a command's module is imported when the
    command is first named, so ``registry --version`` imports none, and ``registry pull`` only
    what pull needs (each module's imports cost start-up: the library's models, the web UI...).
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        # in the order they are given, then added: the order of the docs
        return [*self.lazy, *(name for name in self.commands if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module, __package__), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            raise  # click's main silences it (e.g. `registry ls | head -1`)
        except KeyboardInterrupt:
            click.echo("registry: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except RegistryError as e:
            _maybe_traceback(ctx)
            raise CliError(str(e), e.exit_code) from None
        except Exception as e:  # the catch-all the CLI promises
            _maybe_traceback(ctx)
            raise unexpected_error(e) from None


def _maybe_traceback(ctx: click.Context) -> None:
    state = ctx.find_object(State)
    if (state is not None and state.debug) or os.environ.get("REGISTRY_DEBUG"):
        traceback.print_exc(file=sys.stderr)
