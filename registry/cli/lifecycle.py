"""``registry delete``, ``tag``, ``link``, ``unlink`` and ``history``: a version's life after it is
logged, and the audit log that records it."""
from __future__ import annotations

import click

from .shapes import audit_json, version_json
from .state import State, json_option, pass_state
from .text import table, when


@click.command("delete", short_help="Delete a version (a link: unlink it).")
@click.argument("address")
@click.option("--delete-aliases", is_flag=True, help="Also remove the user aliases pointing at it.")
@json_option
@pass_state
def delete_cmd(state: State, address: str, delete_aliases: bool) -> None:
    """Delete the version ADDRESS names; its blobs go at the first gc after the grace period.

    Refused (exit 3) while a user alias points at it (unless --delete-aliases) and while the
    registry links it. The version number is never reused.
    """
    art = state.api.artifact(address)
    name = art.qualified_name
    art.delete(delete_aliases=delete_aliases)
    if state.json:
        state.emit_json({"address": name, "deleted": True})
    elif not state.quiet:
        state.out(f"deleted {name}")


@click.command("tag", short_help="Add or remove tags of a version.")
@click.argument("address")
@click.argument("tags", nargs=-1, metavar="[TAG]...")
@click.option("--rm", "removed", multiple=True, metavar="TAG", help="Remove TAG (repeatable).")
@json_option
@pass_state
def tag_cmd(state: State, address: str, tags: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Add TAGs to the version ADDRESS names (and remove --rm ones); prints its tags.

    Tags are words of letters, digits, '-' and '_' separated by spaces (W&B's syntax).
    """
    art = state.api.artifact(address)
    if tags or removed:
        art.tags = [t for t in [*art.tags, *tags] if t not in removed]
        art.save()
    if state.json:
        state.emit_json({"address": art.qualified_name, "tags": art.tags})
    else:
        state.out(", ".join(art.tags) if art.tags else "-")


@click.command("link", short_help="Link a version into the registry (no copy).")
@click.argument("address")
@click.argument("target", metavar="registry/COLLECTION")
@click.option("--alias", "aliases", multiple=True, metavar="A",
              help="Point alias A at the link (repeatable).")
@json_option
@pass_state
def link_cmd(state: State, address: str, target: str, aliases: tuple[str, ...]) -> None:
    """Link the version ADDRESS names into a collection (registry/COLLECTION, or W&B's
    wandb-registry-NAME/COLLECTION): the same files, nothing copied."""
    link = state.api.artifact(address).link(target, aliases=list(aliases))
    if state.json:
        state.emit_json(version_json(link))
    elif not state.quiet:
        state.out(f"linked {link.source_qualified_name} as {link.qualified_name} "
                  f"(aliases: {', '.join(link.aliases) or '-'})")


@click.command("unlink", short_help="Remove a link from its collection.")
@click.argument("address", metavar="registry/COLLECTION:ALIAS|vN")
@json_option
@pass_state
def unlink_cmd(state: State, address: str) -> None:
    """Remove the link ADDRESS names (and its aliases) from its collection; the source stays."""
    link = state.api.artifact(address)
    name, source = link.qualified_name, link.source_qualified_name if link.is_link else None
    link.unlink()
    if state.json:
        state.emit_json({"address": name, "source": source, "unlinked": True})
    elif not state.quiet:
        state.out(f"unlinked {name} (was {source})")


@click.command("history", short_help="Show the audit log of an artifact or collection.")
@click.argument("collection", metavar="PROJECT/NAME")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Only the newest N entries (0: all).")
@json_option
@pass_state
def history_cmd(state: State, collection: str, limit: int) -> None:
    """Every alias move, link, unlink, delete, retention action and edit of PROJECT/NAME (or
    registry/COLLECTION), oldest first: when, who (user@host, and the S3 identity where the
    store tells it), what, from -> to. An alias or version in the address is ignored."""
    entries = state.api.audit_trail(collection.split(":", 1)[0].split("@", 1)[0], limit=limit or None)
    if state.json:
        state.emit_json([audit_json(e) for e in entries])
        return
    if not entries:
        state.note(f"no audit entries for {collection}")
        return
    rows = [[when(e.at), f"{e.actor.user}@{e.actor.host}", e.action, e.subject, e.alias or "",
             f"{e.before or '-'} -> {e.after or '-'}"] for e in entries]
    state.out(table(rows, ["WHEN", "WHO", "ACTION", "SUBJECT", "ALIAS", "FROM -> TO"]))
