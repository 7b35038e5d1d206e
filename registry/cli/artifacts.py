"""``registry ls`` and ``registry show``: what the store holds, and one version in detail."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..errors import InvalidNameError, NotFoundError
from ..names import parse_address
from ..sizes import format_size
from .shapes import collection_json, show_json, version_json
from .state import State, json_option, pass_state
from .text import plural, run_line, run_ref_text, table, when

if TYPE_CHECKING:  # annotations only
    from .. import Api, ApiRun, Artifact, ArtifactFile
    from ..api import ArtifactCollection


@click.command("ls", short_help="List projects, artifacts or versions.")
@click.argument("target", required=False, metavar="[PROJECT|PROJECT/NAME]")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="For PROJECT/NAME: the newest N versions only, reading no other record (0: all).")
@click.option("--tag", metavar="TAG", help="Only versions carrying TAG (of PROJECT, or of PROJECT/NAME).")
@json_option
@pass_state
def ls_cmd(state: State, target: str | None, limit: int, tag: str | None) -> None:
    """List projects, the artifacts of a PROJECT, or the versions of PROJECT/NAME.

    \b
    registry ls                    projects
    registry ls PROJECT            artifacts: type, latest version, aliases, size, updated
    registry ls PROJECT/NAME       versions: aliases, digest, size, files, created, run
    """
    api = state.api  # opened first: a store that cannot be opened is the error to report
    if tag is not None:
        _ls_tagged(state, api, target, tag)
    elif target is None:
        _ls_projects(state, api)
    elif "/" in target or ":" in target or "@" in target:
        _ls_versions(state, api, target, limit or None)
    else:
        _ls_artifacts(state, api, target)


def _ls_projects(state: State, api: Api) -> None:
    projects = api.projects()
    if state.json:
        state.emit_json([{"name": p} for p in projects])
    elif projects:
        state.out("\n".join(projects))
    else:
        state.note(f"no projects in {api.url}")


def _ls_artifacts(state: State, api: Api, project: str) -> None:
    api.require_project(project)
    collections = api.artifacts(project)
    if state.json:
        state.emit_json([collection_json(c) for c in collections])
    elif not collections:
        state.note(f"project {project} has no artifacts")
    else:
        state.out(_artifacts_table(collections))


def _artifacts_table(collections: list[ArtifactCollection]) -> str:
    rows = []
    for c in collections:
        custom = [f"{a}:v{v}" for v, names in sorted(c.aliases.items()) for a in names if a != "latest"]
        rows.append([c.name, c.type, c.latest.version, str(c.version_count), ", ".join(custom) or "-",
                     format_size(c.latest.size), when(c.updated_at)])
    return table(rows, ["NAME", "TYPE", "LATEST", "VERSIONS", "ALIASES", "SIZE", "UPDATED"])


def _ls_tagged(state: State, api: Api, target: str | None, tag: str) -> None:
    if target is None:
        raise InvalidNameError("`registry ls --tag TAG` needs PROJECT or PROJECT/NAME")
    if "/" in target:
        address = parse_address(target, state.default_project, default_alias=None)
        versions = [v for v in api.artifact_versions(address.collection) if tag in v.tags]
    else:
        api.require_project(target)
        versions = api.tagged(target, tag)
    if state.json:
        state.emit_json([version_json(v) for v in versions])
    elif not versions:
        state.note(f"no version of {target} carries tag {tag!r}")
    else:
        rows = [[v.qualified_name, ", ".join(v.tags), ", ".join(v.aliases) or "-", format_size(v.size),
                 when(v.created_at)] for v in versions]
        state.out(table(rows, ["VERSION", "TAGS", "ALIASES", "SIZE", "CREATED"]))


def _ls_versions(state: State, api: Api, target: str, limit: int | None) -> None:
    address = parse_address(target, state.default_project, default_alias=None)
    if address.alias or address.digest:
        raise InvalidNameError(
            f"`registry ls` takes PROJECT/NAME, not a version ({target!r}): use `registry show {target}`"
        )
    versions = api.artifact_versions(address.collection, limit=limit)
    if state.json:
        state.emit_json([version_json(v) for v in versions])
        return
    rows = [[v.version, ", ".join(v.aliases) or "-", v.digest[:12], format_size(v.size), str(v.file_count),
             when(v.created_at), run_ref_text(address.project, v.record.created_by)] for v in versions]
    state.out(table(rows, ["VERSION", "ALIASES", "DIGEST", "SIZE", "FILES", "CREATED", "RUN"]))
    older = versions[0].record.version if versions else 0
    if older:
        state.note(f"... and {older} older version(s) (--limit 0 shows all)")


@click.command("show", short_help="Show one version: metadata, aliases, files, runs.")
@click.argument("address")
@click.option("--files", "max_files", type=click.IntRange(min=0), default=20, show_default=True,
              help="Show at most this many files (0: all).")
@json_option
@pass_state
def show_cmd(state: State, address: str, max_files: int) -> None:
    """Show one version: description, metadata, aliases, files, logged-by and used-by runs."""
    art = state.api.artifact(address)
    shown = art.first_files(max_files or None)  # a million-file version: only the pages shown are read
    total = art.file_count
    logged_by = _logged_by(art)
    used_by = art.used_by()
    if state.json:
        state.emit_json(show_json(art, shown, len(shown) < total, logged_by, used_by))
        return
    lines = [*_show_header(art, logged_by, used_by), *_metadata_lines(art), *_files_lines(total, shown)]
    state.out("\n".join(lines))


def _logged_by(art: Artifact) -> ApiRun | None:
    try:
        return art.logged_by()
    except NotFoundError:  # the run record is gone; the version still names it
        return None


def _show_header(art: Artifact, logged_by: ApiRun | None, used_by: list[ApiRun]) -> list[str]:
    record = art.record
    if logged_by:
        logged = run_line(logged_by)
    else:
        logged = (run_ref_text("", record.created_by) + " (run record missing)") if record.created_by else "-"
    lines = [
        f"{art.qualified_name} ({art.type})",
        f"aliases:     {', '.join(art.aliases) or '-'}",
        f"digest:      sha256:{record.digest}",
        f"size:        {format_size(record.size)} in {plural(record.file_count, 'file')}",
        f"created:     {when(record.created_at)}",
        f"logged by:   {logged}",
        f"used by:     {', '.join(run_line(r) for r in used_by) if used_by else '-'}",
    ]
    if art.description:
        lines.append(f"description: {art.description}")
    lines += _lifecycle_lines(art)
    return lines


def _lifecycle_lines(art: Artifact) -> list[str]:
    """Tags, TTL and registry links, when the version has any."""
    lines = [f"tags:        {', '.join(art.tags)}"] if art.tags else []
    if art.ttl:
        lines.append(f"ttl:         {art.ttl}")
    if art.is_link:
        lines.append(f"link of:     {art.source_qualified_name}")
    linked = art.linked_artifacts
    if linked:
        lines.append(f"linked as:   {', '.join(a.qualified_name for a in linked)}")
    return lines


def _metadata_lines(art: Artifact) -> list[str]:
    if not art.metadata:
        return []
    text = json.dumps(art.metadata, indent=2, ensure_ascii=False, sort_keys=True)
    return ["metadata:", *("  " + line for line in text.splitlines())]


def _files_lines(total: int, shown: list[ArtifactFile]) -> list[str]:
    width = max((len(format_size(f.size)) for f in shown), default=0)
    lines = [f"files ({total}):", *(f"  {format_size(f.size).rjust(width)}  {f.path}"
                                    + (f"  -> {f.ref}" if f.ref else "") for f in shown)]
    if len(shown) < total:
        lines.append(f"  ... and {total - len(shown)} more (--files 0 shows all)")
    return lines
