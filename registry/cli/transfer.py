"""``registry pull`` and ``registry push``: move a version's files between a directory and the store."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ConflictError, InvalidNameError, LocalEditsError
from ..names import Address, parse_address, validate_alias
from ..sizes import format_size
from .params import parse_metadata
from .shapes import pull_json, push_json
from .state import State, json_option, pass_state
from .text import plural

if TYPE_CHECKING:  # annotations only
    from ..artifact import Artifact
    from ..download import DownloadReport

_LISTED = 5  # file names an error or summary lists before "..."


@click.command("pull", short_help="Download a version and print the directory.")
@click.argument("address")
@click.option("-d", "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Download into DIR (default ./artifacts/<name>:v<N>).")
@click.option("--path-prefix", metavar="P", help="Only the files whose path starts with P.")
@click.option("--clean", is_flag=True, help="Also delete files in DIR that the version does not hold.")
@click.option("--force", is_flag=True,
              help="Overwrite files in DIR that were edited locally (they are listed either way).")
@json_option
@pass_state
def pull_cmd(state: State, address: str, directory: Path | None, path_prefix: str | None, clean: bool,
             force: bool) -> None:
    """Download a version, verified, and print the directory.

    Files already in DIR with the version's bytes are left alone; files fetched before (by
    any version) come from the local cache, and files pushed from this machine from their
    source, so a repeat pull transfers nothing. A file in DIR edited since it was pulled is
    never overwritten silently: pull refuses, listing the edited files (exit 3), unless
    --force, which restores them and says which.
    """
    art = state.api.artifact(address)
    # the progress bar's total: the record's size, or (a million-file version) the pages under the prefix
    total = sum(f.size for f in art.iter_entries(path_prefix)) if path_prefix else art.size
    with state.progress(total, art.qualified_name) as advance:
        try:
            report = art.pull(directory, path_prefix=path_prefix, clean=clean, overwrite=force,
                              progress=(lambda nbytes, _files: advance(nbytes)) if advance else None)
        except LocalEditsError as e:
            raise _edits_conflict(art.qualified_name, e) from None
    if state.json:
        state.emit_json(pull_json(art, report))
        return
    state.out(str(report.root))
    state.note(_pull_summary(art.qualified_name, report, clean))


def _edits_conflict(address: str, error: LocalEditsError) -> ConflictError:
    listed = ", ".join(error.paths[:_LISTED]) + (" ..." if len(error.paths) > _LISTED else "")
    return ConflictError(
        f"{len(error.paths)} file(s) in {error.root} were edited locally and differ from {address}: "
        f"{listed}; nothing was changed. Move them away, or pull --force to restore the version's bytes"
    )


def _pull_summary(address: str, report: DownloadReport, clean: bool) -> str:
    summary = f"pulled {address}: {len(report.placed)} placed, {len(report.unchanged)} unchanged"
    summary += f", {format_size(report.fetched_bytes)} fetched from the store"
    if report.local_bytes:
        summary += f", {format_size(report.local_bytes)} copied from files on this machine"
    if report.restored:
        listed = ", ".join(report.restored[:_LISTED])
        summary += f"; restored {len(report.restored)} locally edited file(s): {listed}"
        summary += " ..." if len(report.restored) > _LISTED else ""
    if report.extra and not clean:
        summary += f"; {len(report.extra)} extra file(s) in {report.root} (--clean removes them)"
    elif report.removed:
        summary += f"; removed {len(report.removed)} extra file(s)"
    return summary


@click.command("push", short_help="Log a file or directory (or references) as a new version.")
@click.argument("path", metavar="PATH|URI")
@click.argument("address")
@click.option("--type", "type_", required=True, metavar="TYPE", help="Artifact type, e.g. dataset or model.")
@click.option("--alias", "aliases", multiple=True, metavar="A",
              help="Also point alias A at the version (repeatable).")
@click.option("--description", metavar="D", help="Description of the artifact.")
@click.option("--metadata", metavar="JSON|@FILE", help="Metadata: a JSON object, or @file.json.")
@click.option("--no-checksum", is_flag=True,
              help="For a URI: record ETag, size and version only; do not read the content to hash it.")
@click.option("--max-objects", type=click.IntRange(min=1), metavar="N",
              help="For a URI: refuse a prefix or directory of more than N objects (default 10,000,000).")
@json_option
@pass_state
def push_cmd(state: State, path: str, address: str, type_: str, aliases: tuple[str, ...],
             description: str | None, metadata: str | None, no_checksum: bool,
             max_objects: int | None) -> None:
    """Log the file or directory PATH as a new version of ADDRESS ([PROJECT/]NAME[:ALIAS]).

    A URI (s3://bucket/prefix, file:///path, http(s)://...) is logged as references: the
    objects stay where they are, the version records what they are, and a pull fetches and
    checks them. Runs a run of job type "push" that logs it, so lineage shows where it came
    from. Contents identical to the latest version make no new version: that one is
    reported (and still receives the aliases).
    """
    from .. import Artifact, init  # the writing side: a pull (or any other command) does not load it

    meta = parse_metadata(metadata)
    target = _push_target(address, state.default_project)
    wanted = _wanted_aliases(target, aliases)
    artifact = Artifact(target.name, type_, description=description, metadata=meta)
    source = _add_source(artifact, path, not no_checksum, max_objects)
    config = {"source": source, "aliases": wanted}
    uploaded = sum(f.size for f in artifact.files() if f.ref is None)
    with (state.progress(uploaded, target.collection) as advance,
          init(project=target.project, job_type="push", url=state.url, mode=state.mode,
               config=config) as run):
        logged = run.log_artifact(artifact, aliases=wanted, progress=advance)
    if state.json:
        state.emit_json(push_json(logged, run.path))
    else:
        state.out(_push_text(logged, run.path, state.quiet))


def _add_source(artifact: Artifact, path: str, checksum: bool, max_objects: int | None) -> str:
    """Add PATH|URI to ``artifact``; returns what the push run records as its source."""
    if "://" in path:  # add_reference names the schemes it takes when given another
        artifact.add_reference(path, checksum=checksum, max_objects=max_objects)
        return path
    local = Path(path)
    if not local.exists():
        raise click.BadParameter(f"Path {path!r} does not exist.", param_hint="'PATH|URI'")
    if local.is_dir():
        artifact.add_dir(local)
    else:
        artifact.add_file(local)
    return str(local.resolve())


def _push_target(address: str, default_project: str) -> Address:
    target = parse_address(address, default_project, default_alias=None)
    if target.digest:
        raise InvalidNameError(f"cannot push to {address!r}: give [PROJECT/]NAME[:ALIAS], not a digest")
    return target


def _wanted_aliases(target: Address, aliases: tuple[str, ...]) -> list[str]:
    """``--alias`` values plus ADDRESS's own alias (``:latest`` moves anyway), each checked, once each."""
    own = [target.alias] if target.alias and target.alias != "latest" else []
    wanted = list(dict.fromkeys([*aliases, *own]))
    for alias in wanted:
        validate_alias(alias, settable=True)
    return wanted


def _push_text(logged: Artifact, run_path: str, quiet: bool) -> str:
    aliases = ", ".join(logged.aliases) or "-"
    if quiet:
        return logged.qualified_name
    if logged.created:
        return (f"created {logged.qualified_name} ({plural(logged.file_count, 'file')}, "
                f"{format_size(logged.size)}; aliases: {aliases}; run {run_path})")
    return f"{logged.qualified_name} already holds these contents; no new version logged (aliases: {aliases})"
