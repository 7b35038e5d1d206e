"""``registry cache info|clean`` and ``registry gc``: the local download cache and the store's
unreferenced blobs.

The library's ``Api`` has no cache or garbage-collection calls, so these commands (and
``shapes.cache_info_json``) reach the cache and the store through ``Api.store``: the only
places the CLI goes below ``Api``.
"""
from __future__ import annotations

import dataclasses

import click

from ..sizes import format_size
from .errors import RegistryGroup
from .params import DURATION, SIZE
from .shapes import cache_info_json, gc_json, retention_json
from .state import State, json_option, pass_state


@click.group("cache", cls=RegistryGroup, short_help="Inspect or shrink the local download cache.")
def cache_group() -> None:
    """The local download cache (REGISTRY_CACHE_DIR)."""


@cache_group.command("info")
@json_option
@pass_state
def cache_info_cmd(state: State) -> None:
    """Where the cache is, how many files and bytes it holds, and its limit."""
    store = state.api.store
    info = cache_info_json(store)
    if state.json:
        state.emit_json(info)
        return
    limit = format_size(info["max_size"]) if info["max_size"] is not None else "none (set REGISTRY_CACHE_MAX)"
    lines = [
        f"directory: {info['directory']}",
        f"entries:   {info['entries']}",
        f"size:      {format_size(info['size'])}",
        f"limit:     {limit}",
    ]
    if info["store_is_cache"]:
        lines.append(f"note:      the store {store.url} is on this machine; its blobs serve as the cache")
    state.out("\n".join(lines))


@cache_group.command("clean")
@click.option("--max-size", type=SIZE, metavar="SIZE",
              help="Evict least-recently-used files until the cache fits SIZE (e.g. 500MB, 20GiB). "
                   "Default: REGISTRY_CACHE_MAX, or 0 (empty the cache) when that is unset.")
@json_option
@pass_state
def cache_clean_cmd(state: State, max_size: int | None) -> None:
    """Shrink the cache; files a running download is placing are skipped."""
    store = state.api.store
    limit = max_size if max_size is not None else store.settings.cache_max
    if limit is None:
        limit = 0
    files, freed = store.cache.clean(limit)
    if state.json:
        state.emit_json({"freed_files": files, "freed_bytes": freed, "max_size": limit,
                         "store_is_cache": store.cache.is_store})
    elif store.cache.is_store:
        state.note(f"the store {store.url} is on this machine and serves as the cache: nothing to clean")
    elif not state.quiet:
        state.out(f"freed {format_size(freed)} in {files} file(s); cache limit {format_size(limit)}")


@click.command("gc", short_help="Delete unreferenced blobs from the store.")
@click.option("--grace", type=DURATION, default="24h", show_default=True, metavar="DURATION",
              help="Keep unreferenced blobs younger than this (e.g. 24h, 30m, 7d, 0s).")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@json_option
@pass_state
def gc_cmd(state: State, grace: float, dry_run: bool) -> None:
    """Apply retention policies and TTLs, then delete blobs that no version, run file or logged
    image references.

    Only blobs older than the grace period go (a deleted version's, once it has been deleted
    that long), and never one that a writer in flight relies on. Packs (format 2) whose
    chunks are all unreferenced go the same way; a pack that is mostly unreferenced (under half
    its bytes live) has its live chunks copied into a new pack and is then deleted. Reports what
    was (or, with --dry-run, would be) deleted and rewritten.
    """
    # imported here, not at the top: only gc needs them, and every other command starts without them
    from ..gc import collect_garbage
    from ..retention import apply as apply_retention

    store = state.api.store
    if not dry_run:
        store.check_writable()
    retention = apply_retention(store, dry_run=dry_run)
    retiring = {(r.record.project, r.record.name, r.record.version) for r in retention.retired}
    report = collect_garbage(store, grace_seconds=grace, dry_run=dry_run,
                             retiring=retiring if dry_run else ())
    if state.json:
        state.emit_json({**gc_json(report), "retention": retention_json(retention)})
    elif not state.quiet or not dry_run:
        verb = "would delete" if dry_run else "deleted"
        for retired in retention.retired:
            state.out(f"{verb} version {retired.address} ({retired.rule})")
        state.out(f"{verb} {len(report.deleted)} blob(s), {format_size(report.freed_bytes)}; "
                  f"kept {report.referenced} referenced, {report.kept_young} younger than the grace period, "
                  f"{report.kept_in_flight} in flight")
        if report.repacked:
            into = "" if dry_run else f" into {len(report.new_packs)} new pack(s)"
            state.out(f"{'would rewrite' if dry_run else 'rewrote'} {len(report.repacked)} mostly-dead "
                      f"pack(s), copying {format_size(report.rewritten_bytes)} of live chunks{into}")
        if report.index_sets_written or report.index_sets_deleted:
            written, replaced = len(report.index_sets_written), len(report.index_sets_deleted)
            state.out(f"{'would write' if dry_run else 'wrote'} {written} index set(s), "
                      f"{'would replace' if dry_run else 'replaced'} {replaced}")


@click.command("migrate", short_help="Move a store's small format-1 blobs into packs (format 2).")
@click.option("--apply", "apply_", is_flag=True, help="Do it. Without this, only report what would move.")
@json_option
@pass_state
def migrate_cmd(state: State, apply_: bool) -> None:
    """Pack the small files of every live format-1 version (dry run unless --apply).

    Records never change (their hashes are what aliases and runs name): a format-1 version
    stays one, but its small files move into packs, so a pull fetches them with a few ranged
    GETs instead of a request per file. Safe to interrupt and run again. Registry versions
    older than format 2 cannot read a migrated version.
    """
    from ..migrate import migrate  # only this command needs it

    store = state.api.store
    report = migrate(store, dry_run=not apply_)
    if state.json:
        state.emit_json(dataclasses.asdict(report))
        return
    if report.note:
        state.note(report.note)
        return
    verb = "would pack" if report.dry_run else "packed"
    state.out(f"{verb} {report.to_pack} blob(s), {format_size(report.bytes_to_pack)}, of {report.versions} "
              f"format-1 version(s); {report.already_packed} already in packs")
    if not report.dry_run:
        state.out(f"wrote {len(report.packs)} pack(s); removed {report.loose_deleted} loose copies")
    elif report.to_pack:
        state.out("run again with --apply to do it")
