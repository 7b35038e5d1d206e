"""``registry runs`` and ``registry run``: the runs of a project, and one run in detail."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..sizes import format_size
from .shapes import run_detail_json, run_json
from .state import State, json_option, pass_state
from .text import dump_value, table, when

if TYPE_CHECKING:  # annotations only
    from .. import ApiRun
    from ..records import ArtifactRef


@click.command("runs", short_help="List the runs of a project.")
@click.argument("project", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="The newest N runs only, reading no other run record (0: all).")
@json_option
@pass_state
def runs_cmd(state: State, project: str | None, limit: int) -> None:
    """List the runs of PROJECT, newest first (default: the --project default)."""
    project = project or state.default_project
    state.api.require_project(project)
    runs = state.api.runs(project, limit=limit or None)
    if state.json:
        state.emit_json([run_json(r) for r in runs])
    elif not runs:
        state.note(f"project {project} has no runs")
    else:
        state.out(_runs_table(project, runs))
        if limit and len(runs) == limit:
            state.note(f"the {limit} newest runs (--limit 0 shows all)")


def _runs_table(project: str, runs: list[ApiRun]) -> str:
    def names(refs: list[ArtifactRef]) -> str:
        return ", ".join(ref.qualified_name.removeprefix(f"{project}/") for ref in refs) or "-"

    rows = [[r.id, r.name, r.job_type or "-", r.state, when(r.created_at),
             names(r.record.inputs), names(r.record.outputs)]
            for r in runs]
    return table(rows, ["ID", "NAME", "JOB TYPE", "STATE", "STARTED", "INPUTS", "OUTPUTS"])


@click.command("run", short_help="Show one run: config, summary, inputs, outputs.")
@click.argument("path", metavar="PROJECT/RUN")
@json_option
@pass_state
def run_cmd(state: State, path: str) -> None:
    """Show one run (by id or name): job type, state, config, summary, inputs, outputs."""
    run = state.api.run(path)
    if state.json:
        state.emit_json(run_detail_json(run))
    else:
        state.out("\n".join([*_run_header(run), *_run_values(run), *_run_artifacts(run)]))


def _run_header(run: ApiRun) -> list[str]:
    record = run.record
    lines = [
        f"{run.path} ({run.name})",
        f"job type:  {run.job_type or '-'}",
        f"state:     {run.state}" + (f" ({run.error})" if run.error else ""),
        f"started:   {when(run.created_at)}",
        f"ended:     {when(run.ended_at)}",
        f"host:      {record.host or '-'}" + (f"  git {record.git_commit[:12]}" if record.git_commit else ""),
    ]
    if run.tags:
        lines.append(f"tags:      {', '.join(run.tags)}")
    if run.notes:
        lines.append(f"notes:     {run.notes}")
    return lines


def _run_values(run: ApiRun) -> list[str]:
    lines = []
    for title, values in (("config", run.config), ("summary", run.summary)):
        lines.append(f"{title}:" + ("" if values else " -"))
        lines += [f"  {k}: {dump_value(v)}" for k, v in sorted(values.items())]
    return lines


def _run_artifacts(run: ApiRun) -> list[str]:
    """Inputs, outputs and the files the run saved."""
    record = run.record
    lines = []
    for title, refs in (("inputs", record.inputs), ("outputs", record.outputs)):
        lines.append(f"{title}:" + ("" if refs else " -"))
        lines += [f"  {ref.qualified_name} ({ref.type})" for ref in refs]
    if record.files:
        lines.append("files:")
        lines += [f"  {format_size(f.size)}  {f.path}" for f in record.files]
    return lines
