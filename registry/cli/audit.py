"""``registry lineage``, ``diff`` and ``verify``: where a version came from, what changed, whether
it is intact."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click

from ..errors import NotFoundError
from ..sizes import format_size
from .state import State, json_option, pass_state
from .text import dump_value


@click.command("lineage", short_help="Show what a version was made from and what it made.")
@click.argument("address")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what ADDRESS was made from.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what was made from ADDRESS.")
@click.option("--explode", is_flag=True,
              help="One node per version and run, instead of per type and job type.")
@click.option("--depth", type=click.IntRange(min=1), help="Follow at most this many runs away.")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json"]), default=None,
              help="Output format (default text; json with --json).")
@pass_state
def lineage_cmd(state: State, address: str, direction: Literal["upstream", "downstream"] | None,
                explode: bool, depth: int | None, fmt: str | None) -> None:
    """Show the runs and versions upstream and downstream of a version."""
    graph = state.api.lineage(address, direction=direction or "both", depth=depth)
    fmt = fmt or ("json" if state.json else "text")
    if fmt == "json":
        state.emit_json(graph.to_dict(explode))
    elif fmt == "mermaid":
        state.out(graph.to_mermaid(explode))
    elif fmt == "dot":
        state.out(graph.to_dot(explode))
    else:
        state.out(graph.to_text(explode))


@click.command("diff", short_help="Compare two versions: files and metadata.")
@click.argument("old")
@click.argument("new")
@json_option
@pass_state
def diff_cmd(state: State, old: str, new: str) -> None:
    """Compare two versions: files added, removed, changed, renamed; metadata changes."""
    # imported here, not at the top: only diff needs it, and every other command starts without it
    from ..compare import diff_artifacts

    result = diff_artifacts(state.api.artifact(old), state.api.artifact(new))
    if state.json:
        state.emit_json(result)
        return
    lines = [f"--- {result['old']}", f"+++ {result['new']}"]
    if result["identical"]:
        lines.append("no differences")
    else:
        lines += [*_file_changes(result["files"]), *_metadata_changes(result)]
    state.out("\n".join(lines))


def _file_changes(files: dict[str, Any]) -> list[str]:
    added, removed, changed, renamed = files["added"], files["removed"], files["changed"], files["renamed"]
    return [
        (f"files: {len(added)} added, {len(removed)} removed, {len(changed)} changed, "
         f"{len(renamed)} renamed, {files['unchanged']} unchanged"),
        *(f"  + {f['path']} ({format_size(f['size'])})" for f in added),
        *(f"  - {f['path']} ({format_size(f['size'])})" for f in removed),
        *(f"  ~ {f['path']} ({format_size(f['old_size'])} -> {format_size(f['new_size'])})" for f in changed),
        *(f"  > {f['old_path']} -> {f['new_path']}" for f in renamed),
    ]


def _metadata_changes(result: dict[str, Any]) -> list[str]:
    """Metadata keys added, removed or changed, then the type and description if they changed."""
    meta, lines = result["metadata"], []
    if any(meta.values()):
        lines.append("metadata:")
        lines += [f"  + {k}: {dump_value(v)}" for k, v in meta["added"].items()]
        lines += [f"  - {k}: {dump_value(v)}" for k, v in meta["removed"].items()]
        changed = meta["changed"].items()
        lines += [f"  ~ {k}: {dump_value(v['old'])} -> {dump_value(v['new'])}" for k, v in changed]
    for key in ("type", "description"):
        if result[key]:
            lines.append(f"{key}: {dump_value(result[key]['old'])} -> {dump_value(result[key]['new'])}")
    return lines


@click.command("verify", short_help="Re-hash a download or the cache against a version.")
@click.argument("address")
@click.argument("directory", required=False, metavar="[DIR]", type=click.Path(path_type=Path))
@json_option
@pass_state
def verify_cmd(state: State, address: str, directory: Path | None) -> None:
    """Re-hash a download in DIR (or, without DIR, the cached copies) against the version.

    Exits 4 naming the files that do not match.
    """
    art = state.api.artifact(address)
    if directory is not None and not directory.is_dir():
        raise NotFoundError(
            f"{directory} is not a directory: pull it first with `registry pull {address} -d {directory}`"
        )
    art.verify(directory)
    where = str(directory) if directory is not None else "cache"
    if state.json:
        state.emit_json({"address": art.qualified_name, "where": where, "ok": True, "files": art.file_count})
    elif not state.quiet:
        shown = where if directory else "the cache"
        state.out(f"ok: {art.file_count} file(s) of {art.qualified_name} in {shown} match")
