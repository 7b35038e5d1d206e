"""``registry sync | copy | export | import``: moving work between stores (see docs/OFFLINE.md)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from ..errors import ConflictError
from ..sizes import format_size
from .errors import CliError
from .state import State, json_option, pass_state


@click.command("sync")
@click.option("--dry-run", is_flag=True, help="List what would be published; change nothing.")
@json_option
@pass_state
def sync_cmd(state: State, dry_run: bool) -> None:
    """Publish what offline runs logged (the outbox) into the store.

    Each version gets its real number (contents equal to the store's latest reuse it), runs
    and lineage are rewritten to those numbers, and aliases move by compare-and-swap: an alias
    someone moved in the store meanwhile is reported (exit 3) and left alone. Safe to run
    again, also after being killed: nothing is ever published twice.
    """
    from ..outbox_sync import sync  # these modules load only for their commands: a faster start

    report = sync(state.url, dry_run=dry_run)
    if state.json:
        state.emit_json(asdict(report))
    else:
        _sync_text(state, report)
    if report.conflicts:
        raise CliError(f"{len(report.conflicts)} conflict(s): " + "; ".join(report.conflicts),
                       ConflictError.exit_code)


def _sync_text(state: State, report) -> None:
    if not report.versions and not report.runs and not report.aliases:
        state.out(f"nothing to sync for {report.url}")
        return
    verb = "would publish" if report.dry_run else "published"
    for version in report.versions:
        if report.dry_run or version["created"]:
            target = f" as {version['published']}" if version["published"] else ""
            state.out(f"{verb} {version['outbox']}{target}")
        else:
            state.out(f"{version['outbox']} equals {version['published']}: no new version")
    for alias in report.aliases:
        state.out(f"{'would move' if report.dry_run else 'moved'} {alias}")
    for run in report.runs:
        state.out(f"{verb} run {run}")
    if not report.dry_run:
        state.note(f"sent {report.sent.blobs} blob(s), {format_size(report.sent.bytes)}; "
                   f"outbox moved to {report.archived_to}")


@click.command("copy", short_help="Mirror projects or artifacts from one store to another.")
@click.argument("src_url", metavar="SRC_URL")
@click.argument("dst_url", metavar="DST_URL")
@click.argument("addresses", nargs=-1, metavar="[ADDRESS...]")
@click.option("--project", "projects", multiple=True, metavar="P",
              help="Copy the whole project P (all artifacts, versions, aliases and runs); repeatable.")
@click.option("--dry-run", is_flag=True, help="List the versions that would be copied; write nothing.")
@click.option("--src-endpoint", metavar="URL", help="S3 endpoint of SRC_URL (default: AWS_ENDPOINT_URL).")
@click.option("--dst-endpoint", metavar="URL", help="S3 endpoint of DST_URL (default: AWS_ENDPOINT_URL).")
@click.option("--src-profile", metavar="NAME", help="AWS profile (credentials) for SRC_URL.")
@click.option("--dst-profile", metavar="NAME", help="AWS profile (credentials) for DST_URL.")
@json_option
@pass_state
def copy_cmd(state: State, src_url: str, dst_url: str, addresses: tuple[str, ...], projects: tuple[str, ...],
             dry_run: bool, src_endpoint: str | None, dst_endpoint: str | None, src_profile: str | None,
             dst_profile: str | None) -> None:
    """Mirror projects (--project) or artifacts (ADDRESS: its versions up to the one named) from
    SRC_URL to DST_URL, keeping version numbers, digests, aliases, runs and lineage.

    Only what DST_URL lacks is sent, every blob is verified, and a copy killed midway continues
    when run again. A destination whose history diverged (a version number holding other
    contents) is refused (exit 3) before anything is written.
    """
    from ..mirror import copy_store

    report = copy_store(src_url, dst_url, projects=list(projects), addresses=list(addresses),
                        default_project=state.default_project, dry_run=dry_run,
                        source_endpoint=src_endpoint, source_profile=src_profile,
                        dest_endpoint=dst_endpoint, dest_profile=dst_profile)
    if state.json:
        state.emit_json(asdict(report))
        return
    verb = "would copy" if dry_run else "copied"
    for version in report.copied:
        state.out(f"{verb} {version}")
    for run in report.runs:
        state.out(f"copied run {run}")
    for version in report.deleted:
        state.out(f"deleted {version} (deleted at the source)")
    for key in report.updated:
        state.out(f"updated {key}")
    for alias in report.kept_deleted:
        state.out(f"not set: {alias} (its version is deleted here)")
    state.note(f"{len(report.copied)} version(s) {verb}, {report.present} already there; "
               f"sent {report.sent.blobs} blob(s) ({format_size(report.sent.bytes)}), "
               f"{report.sent.present} already there")


@click.command("export", short_help="Write versions, their files, lineage and runs to one tar.")
@click.argument("addresses", nargs=-1, metavar="[ADDRESS...]")
@click.option("--project", "projects", multiple=True, metavar="P",
              help="Export the whole project P; repeatable.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The bundle to write (a tar file).")
@json_option
@pass_state
def export_cmd(state: State, addresses: tuple[str, ...], projects: tuple[str, ...], output: Path) -> None:
    """Write one tar holding ADDRESS's versions (up to the one named) with their files, lineage
    and the runs that logged them, for a site with no network: `registry import` reads it."""
    if not addresses and not projects:
        raise click.UsageError("name at least one ADDRESS or --project")
    from ..bundle import export_bundle

    report = export_bundle(state.api.store, output, projects=list(projects), addresses=list(addresses),
                           default_project=state.default_project)
    if state.json:
        state.emit_json(asdict(report))
        return
    state.out(f"wrote {output} ({len(report.copy.copied)} version(s), {len(report.copy.runs)} run(s), "
              f"{format_size(output.stat().st_size)})")


@click.command("import", short_help="Verify a bundle from `registry export` and commit it.")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_state
def import_cmd(state: State, bundle: Path) -> None:
    """Verify every byte of BUNDLE (from `registry export`) and commit what it holds into the store."""
    from ..bundle import import_bundle

    report = import_bundle(state.api.store, bundle)
    if state.json:
        state.emit_json(asdict(report))
        return
    for version in report.copied:
        state.out(f"imported {version}")
    state.note(f"{len(report.copied)} version(s) imported, {report.present} already there, "
               f"{len(report.runs)} run(s)")
