"""``registry retention set|show|apply``: which versions to keep, and retiring the rest.

Like ``gc``, these reach the store through ``Api.store``: retention is maintenance of the
store, not a call of the W&B API.
"""
from __future__ import annotations

from datetime import timedelta

import click

from ..names import parse_address, validate_name
from ..retention import apply, describe, read_policy, set_policy
from .errors import RegistryGroup
from .params import DURATION
from .shapes import retention_json
from .state import State, json_option, pass_state


@click.group("retention", cls=RegistryGroup, short_help="Keep the last N versions, delete old ones.")
def retention_group() -> None:
    """Retention policies per project or per artifact, and applying them (gc applies them too)."""


def _target(state: State, target: str) -> tuple[str, str | None]:
    if "/" not in target:
        return validate_name(target, "project"), None
    address = parse_address(target, state.default_project, default_alias=None)
    return address.project, address.name


@retention_group.command("set")
@click.argument("target", metavar="PROJECT|PROJECT/NAME")
@click.option("--keep-last", type=click.IntRange(min=0), metavar="N", help="Keep the newest N versions.")
@click.option("--older-than", type=DURATION, metavar="DURATION",
              help="Delete versions older than this (e.g. 30d, 12h).")
@click.option("--keep-aliased/--no-keep-aliased", default=True, show_default=True,
              help="Keep versions a user alias points at (without: delete them with their aliases).")
@json_option
@pass_state
def retention_set_cmd(state: State, target: str, keep_last: int | None, older_than: float | None,
                      keep_aliased: bool) -> None:
    """Set the policy of a PROJECT or of one artifact PROJECT/NAME (which replaces its project's)."""
    project, name = _target(state, target)
    policy = set_policy(state.api.store, project, name, keep_last=keep_last, keep_aliased=keep_aliased,
                        older_than=timedelta(seconds=older_than) if older_than else None)
    if state.json:
        state.emit_json({"target": target, **policy.model_dump(mode="json", exclude={"schema_version"})})
    elif not state.quiet:
        state.out(f"{target}: {describe(policy)}")


@retention_group.command("show")
@click.argument("target", metavar="PROJECT|PROJECT/NAME")
@json_option
@pass_state
def retention_show_cmd(state: State, target: str) -> None:
    """Show the policy that applies to TARGET (an artifact's own, else its project's)."""
    project, name = _target(state, target)
    policy = read_policy(state.api.store.backend, project, name)
    if state.json:
        state.emit_json(None if policy is None else
                        {"target": target, **policy.model_dump(mode="json", exclude={"schema_version"})})
    else:
        state.out(f"{target}: {describe(policy)}" if policy else f"{target}: no retention policy")


@retention_group.command("apply")
@click.argument("projects", nargs=-1, metavar="[PROJECT]...")
@click.option("--dry-run", is_flag=True, help="List exactly what would be deleted; delete nothing.")
@json_option
@pass_state
def retention_apply_cmd(state: State, projects: tuple[str, ...], dry_run: bool) -> None:
    """Delete the versions that policies and TTLs retire (in every project, or PROJECTs).

    Aliased and linked versions stay and are listed as kept. Blobs go at a later gc.
    """
    report = apply(state.api.store, [validate_name(p, "project") for p in projects] or None, dry_run=dry_run)
    if state.json:
        state.emit_json(retention_json(report))
        return
    verb = "would delete" if dry_run else "deleted"
    for retired in report.retired:
        state.out(f"{verb} {retired.address} ({retired.rule})")
    for address, why in report.kept:
        state.note(f"kept {address}: {why}")
    for address, error in report.skipped:
        state.note(f"skipped {address}: {error}")
    if not report.retired:
        state.note("nothing to delete")
