"""``registry alias set|rm``: promote or demote versions by moving aliases."""
from __future__ import annotations

import click

from ..errors import InvalidNameError
from ..names import parse_address, validate_alias
from .errors import RegistryGroup
from .params import VersionType
from .state import State, json_option, pass_state


@click.group("alias", cls=RegistryGroup, short_help="Promote or demote versions (aliases).")
def alias_group() -> None:
    """Promote or demote versions with aliases (e.g. best, production)."""


@alias_group.command("set")
@click.argument("address")
@click.argument("alias")
@click.option("--expect", "expected", type=VersionType(), metavar="vN",
              help="Only if ALIAS still points to vN (compare-and-swap); else exit 3.")
@json_option
@pass_state
def alias_set_cmd(state: State, address: str, alias: str, expected: int | None) -> None:
    """Point ALIAS at the version ADDRESS names."""
    validate_alias(alias, settable=True)
    art = state.api.artifact(address)
    state.api.set_alias(art.qualified_name, alias, expected_version=expected)
    if state.json:
        state.emit_json({"address": art.qualified_name, "alias": alias, "version": art.version})
    elif not state.quiet:
        state.out(f"{art.project}/{art.name}:{alias} -> {art.version}")


@alias_group.command("rm")
@click.argument("collection", metavar="PROJECT/NAME")
@click.argument("alias")
@json_option
@pass_state
def alias_rm_cmd(state: State, collection: str, alias: str) -> None:
    """Remove ALIAS from PROJECT/NAME."""
    parsed = parse_address(collection, state.default_project, default_alias=None)
    if parsed.alias or parsed.digest:
        raise InvalidNameError(f"give PROJECT/NAME without an alias or digest, not {collection!r}")
    state.api.remove_alias(parsed.collection, alias)
    if state.json:
        state.emit_json({"collection": parsed.collection, "alias": alias, "removed": True})
    elif not state.quiet:
        state.out(f"removed alias {alias} from {parsed.collection}")
