"""The ``registry`` command: list, inspect, pull, push and promote artifacts without writing Python.

A thin layer over the library (``registry.Api``, ``registry.init``, ``registry.gc``, the
store's cache). Every failure is one line on stderr, ``registry: error: <what to do>``, with
the exit code of its error class (see ``registry.errors``); ``--debug`` adds the traceback.
Listing and show commands print a stable JSON shape with ``--json`` (docs/CLI.md).
"""
from __future__ import annotations

import json
import os
import re
import sys
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import ConflictError, InvalidNameError, LocalEditsError, NotFoundError, RegistryError, StorageError
from . import __version__
from .settings import DISTRIBUTION, format_size, parse_size

if TYPE_CHECKING:
    from .api import Api, ApiRun
    from .artifact import Artifact
    from .download import DownloadReport

__all__ = ["cli", "main", "parse_duration"]

EXIT_INTERRUPTED = 130
EXIT_UNEXPECTED = 10


# -- errors -----------------------------------------------------------------------------------
class CliError(click.ClickException):
    """An error shown as one line, ``registry: error: <message>``, exiting with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(_one_line(message))
        self.exit_code = exit_code

    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature
        click.echo(f"registry: error: {self.format_message()}", err=True)


def _one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _unexpected(error: BaseException) -> CliError:
    """A CliError for an exception the library did not mean to raise (never a raw traceback)."""
    module = type(error).__module__ or ""
    name = type(error).__name__
    if module.startswith(("botocore", "boto3", "s3transfer", "urllib3")):
        return CliError(f"storage request failed ({name}: {error}): check REGISTRY_URL, AWS_ENDPOINT_URL and the credentials", StorageError.exit_code)
    if isinstance(error, OSError) and error.filename is not None:
        reason = error.strerror or str(error)
        return CliError(f"{reason}: {error.filename}", EXIT_UNEXPECTED)
    return CliError(f"unexpected {name}: {error} (run with --debug for the traceback)", EXIT_UNEXPECTED)


class RegistryGroup(click.Group):
    """Turns every exception of a subcommand into one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they are defined: the order of the docs

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
        except Exception as e:  # noqa: BLE001 - the catch-all the CLI promises
            _maybe_traceback(ctx)
            raise _unexpected(e) from None


def _maybe_traceback(ctx: click.Context) -> None:
    state = ctx.find_object(State)
    if (state is not None and state.debug) or os.environ.get("REGISTRY_DEBUG"):
        traceback.print_exc(file=sys.stderr)


# -- shared state -----------------------------------------------------------------------------
@dataclass
class State:
    url: str | None = None
    project: str | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    _api: "Api | None" = None

    @property
    def api(self) -> "Api":
        if self._api is None:
            from .api import Api
            from .names import validate_name

            self._api = Api(self.url)
            if self.project:
                self._api.default_project = validate_name(self.project, "project")
        return self._api

    @property
    def default_project(self) -> str:
        """``--project``, else REGISTRY_PROJECT's default: known without opening the store (push creates it)."""
        if self.project:
            from .names import validate_name

            return validate_name(self.project, "project")
        from .settings import Settings

        return Settings.from_env(self.url).project

    def out(self, text: str = "") -> None:
        """Primary output (stdout)."""
        click.echo(text)

    def note(self, text: str) -> None:
        """Informational output (stderr), silenced by ``-q``."""
        if not self.quiet:
            click.echo(text, err=True)

    def emit_json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, sort_keys=False, default=_json_default, ensure_ascii=False))

    def progress(self, total: int | None, desc: str):
        """A tqdm bar on stderr when it is a terminal (and not ``-q``); else None."""
        if self.quiet or not _stderr_is_tty():
            return None
        from tqdm import tqdm

        try:
            columns, lines = os.get_terminal_size(sys.stderr.fileno())
        except (OSError, ValueError):
            columns, lines = 0, 0
        # A pty nobody sized reports 0 x 0, which would make tqdm draw nothing.
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                    leave=False, ncols=columns or 80, nrows=lines or 24)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


pass_state = click.make_pass_decorator(State, ensure=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).json = True


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).quiet = True


def json_option(func):
    """``--json`` and ``-q`` on a subcommand: the same as the global ``registry --json`` / ``-q``."""
    func = click.option("-q", "--quiet", "quiet_flag", is_flag=True, expose_value=False, callback=_set_quiet,
                        help="Same as registry -q.")(func)
    return click.option("--json", "json_flag", is_flag=True, expose_value=False, callback=_set_json,
                        help="Print JSON (shape documented in docs/CLI.md).")(func)


# -- parameter types --------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``"24h"`` -> 86400.0; ``"90"`` (seconds), ``"30m"``, ``"7d"``, ``"1h30m"`` and ``"0s"`` work too.

    >>> parse_duration("1h30m"), parse_duration("0s"), parse_duration("2d")
    (5400.0, 0.0, 172800.0)
    """
    raw = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(raw):
        match = _DURATION_PART.match(raw, pos)
        if not match or (not match.group(2) and match.end() != len(raw)):
            raise InvalidNameError(f"invalid duration {text!r}: use e.g. 24h, 30m, 7d, 1h30m or 0s")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not raw:
        raise InvalidNameError(f"invalid duration {text!r}: use e.g. 24h, 30m, 7d, 1h30m or 0s")
    return total


class ParsedType(click.ParamType):
    """A click type built on one of our parsers: its ``InvalidNameError`` becomes a usage error."""

    def __init__(self, name: str, parse, number) -> None:
        self.name, self._parse, self._number = name, parse, number

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):  # a default given as a number
            return self._number(value)
        try:
            return self._parse(value)
        except InvalidNameError as e:
            self.fail(str(e), param, ctx)


class VersionType(click.ParamType):
    name = "vN"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"v?(\d+)", str(value).strip())
        if not match:
            self.fail(f"invalid version {value!r}: use vN, e.g. v3", param, ctx)
        return int(match.group(1))


def _parse_metadata(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    source = "--metadata"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise click.BadParameter(f"cannot read {path}: {e.strerror or e}", param_hint="--metadata") from None
        source = str(path)
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"{source} is not valid JSON ({e})", param_hint="--metadata") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{source} must be a JSON object, not {type(value).__name__}", param_hint="--metadata")
    return value


# -- formatting -------------------------------------------------------------------------------
human_size = format_size


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def _run_ref_text(project: str, ref) -> str:
    if ref is None:
        return "-"
    return ref.id if ref.project == project else f"{ref.project}/{ref.id}"


def version_json(art: "Artifact") -> dict[str, Any]:
    record = art.record
    return {
        "address": art.qualified_name,
        "project": record.project,
        "name": record.name,
        "version": art.version,
        "type": record.type,
        "aliases": art.aliases,
        "digest": f"sha256:{record.digest}",
        "size": record.size,
        "file_count": record.file_count,
        "created_at": record.created_at.isoformat(),
        "created_by": f"{record.created_by.project}/{record.created_by.id}" if record.created_by else None,
        "description": record.description,
    }


def run_json(run: "ApiRun") -> dict[str, Any]:
    record = run.record
    return {
        "path": run.path,
        "project": run.project,
        "id": run.id,
        "name": run.name,
        "job_type": run.job_type,
        "state": run.state,
        "created_at": run.created_at.isoformat(),
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "inputs": [ref.qualified_name for ref in record.inputs],
        "outputs": [ref.qualified_name for ref in record.outputs],
    }


def run_detail_json(run: "ApiRun") -> dict[str, Any]:
    record = run.record
    return {
        **run_json(run),
        "config": run.config,
        "summary": run.summary,
        "tags": list(run.tags),
        "notes": run.notes,
        "error": run.error,
        "host": record.host,
        "python": record.python,
        "git_commit": record.git_commit,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in record.files],
    }


def _run_line(run: "ApiRun") -> str:
    return f"{run.path} ({run.name}, {run.job_type or 'run'}, {run.state})"


def _dump_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


# -- the group --------------------------------------------------------------------------------
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RegistryGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--url", envvar=None, metavar="URL",
              help="Store to use: s3://bucket/prefix, file:///path or a directory (overrides REGISTRY_URL).")
@click.option("--project", metavar="PROJECT", help="Default project for addresses without one (overrides REGISTRY_PROJECT).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text (every listing and show command).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the essential result; no notes or progress bars.")
@click.option("--debug", is_flag=True, help="Show the traceback when a command fails.")
@click.version_option(version=__version__, prog_name="registry", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, url: str | None, project: str | None, as_json: bool, quiet: bool, debug: bool) -> None:
    """Share ML artifacts (versioned datasets and models) on S3 or a local directory.

    ADDRESS is [PROJECT/]NAME[:ALIAS|:vN|@sha256:DIGEST]; without an alias it means
    :latest, without a project the --project / REGISTRY_PROJECT default.

    \b
    Environment: REGISTRY_URL, REGISTRY_PROJECT, REGISTRY_CACHE_DIR, REGISTRY_CACHE_MAX,
    REGISTRY_LINK_MODE, REGISTRY_WORKERS; S3 endpoint and credentials are boto3's own
    (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE...).
    Exit codes: 0 ok, 1 not found, 2 usage or invalid name, 3 conflict, 4 integrity
    failure, 5 storage or configuration error, 10 other error.
    """
    state = ctx.ensure_object(State)
    state.url, state.project, state.quiet, state.debug = url, project, quiet, debug
    state.json = state.json or as_json


# -- ls / show --------------------------------------------------------------------------------
@cli.command("ls", short_help="List projects, artifacts or versions.")
@click.argument("target", required=False, metavar="[PROJECT|PROJECT/NAME]")
@json_option
@pass_state
def ls_cmd(state: State, target: str | None) -> None:
    """List projects, the artifacts of a PROJECT, or the versions of PROJECT/NAME.

    \b
    registry ls                    projects
    registry ls PROJECT            artifacts: type, latest version, aliases, size, updated
    registry ls PROJECT/NAME       versions: aliases, digest, size, files, created, run
    """
    api = state.api
    if target is None:
        projects = api.projects()
        if state.json:
            state.emit_json([{"name": p} for p in projects])
        elif projects:
            state.out("\n".join(projects))
        else:
            state.note(f"no projects in {api.url}")
        return
    if "/" in target or ":" in target or "@" in target:
        _ls_versions(state, target)
        return
    api.require_project(target)
    collections = api.artifacts(target)
    if state.json:
        state.emit_json([
            {
                "project": c.project,
                "name": c.name,
                "type": c.type,
                "version_count": c.version_count,
                "latest": version_json(c.latest),
                "aliases": {alias: f"v{v}" for v, names in sorted(c.aliases.items()) for alias in names},
                "size": c.latest.size,
                "updated_at": c.updated_at.isoformat(),
            }
            for c in collections
        ])
        return
    if not collections:
        state.note(f"project {target} has no artifacts")
        return
    rows = []
    for c in collections:
        custom = [f"{a}:v{v}" for v, names in sorted(c.aliases.items()) for a in names if a != "latest"]
        rows.append([c.name, c.type, c.latest.version, str(c.version_count), ", ".join(custom) or "-",
                     human_size(c.latest.size), _when(c.updated_at)])
    state.out(_table(rows, ["NAME", "TYPE", "LATEST", "VERSIONS", "ALIASES", "SIZE", "UPDATED"]))


def _ls_versions(state: State, target: str) -> None:
    from .names import parse_address

    address = parse_address(target, state.default_project, default_alias=None)
    if address.alias or address.digest:
        raise InvalidNameError(f"`registry ls` takes PROJECT/NAME, not a version ({target!r}): use `registry show {target}`")
    versions = state.api.artifact_versions(address.collection)
    if state.json:
        state.emit_json([version_json(v) for v in versions])
        return
    rows = [[v.version, ", ".join(v.aliases) or "-", v.digest[:12], human_size(v.size), str(v.file_count),
             _when(v.created_at), _run_ref_text(address.project, v.record.created_by)] for v in versions]
    state.out(_table(rows, ["VERSION", "ALIASES", "DIGEST", "SIZE", "FILES", "CREATED", "RUN"]))


@cli.command("show", short_help="Show one version: metadata, aliases, files, runs.")
@click.argument("address")
@click.option("--files", "max_files", type=click.IntRange(min=0), default=20, show_default=True,
              help="Show at most this many files (0: all).")
@json_option
@pass_state
def show_cmd(state: State, address: str, max_files: int) -> None:
    """Show one version: description, metadata, aliases, files, logged-by and used-by runs."""
    art = state.api.artifact(address)
    files = art.files()
    shown = files if max_files == 0 else files[:max_files]
    try:
        logged_by = art.logged_by()
    except NotFoundError:  # the run record is gone; the version still names it
        logged_by = None
    used_by = art.used_by()
    if state.json:
        state.emit_json({
            **version_json(art),
            "metadata": art.metadata,
            "files": [{"path": f.path, "size": f.size, "sha256": f.digest} for f in shown],
            "files_truncated": len(shown) < len(files),
            "logged_by": run_json(logged_by) if logged_by else None,
            "used_by": [run_json(r) for r in used_by],
        })
        return
    record = art.record
    lines = [
        f"{art.qualified_name} ({art.type})",
        f"aliases:     {', '.join(art.aliases) or '-'}",
        f"digest:      sha256:{record.digest}",
        f"size:        {human_size(record.size)} in {_plural(record.file_count, 'file')}",
        f"created:     {_when(record.created_at)}",
        f"logged by:   {_run_line(logged_by) if logged_by else (_run_ref_text('', record.created_by) + ' (run record missing)' if record.created_by else '-')}",
        f"used by:     {', '.join(_run_line(r) for r in used_by) if used_by else '-'}",
    ]
    if record.description:
        lines.append(f"description: {record.description}")
    if art.metadata:
        lines.append("metadata:")
        lines += ["  " + line for line in json.dumps(art.metadata, indent=2, ensure_ascii=False, sort_keys=True).splitlines()]
    lines.append(f"files ({len(files)}):")
    width = max((len(human_size(f.size)) for f in shown), default=0)
    lines += [f"  {human_size(f.size).rjust(width)}  {f.path}" for f in shown]
    if len(shown) < len(files):
        lines.append(f"  ... and {len(files) - len(shown)} more (--files 0 shows all)")
    state.out("\n".join(lines))


# -- pull / push ------------------------------------------------------------------------------
@cli.command("pull", short_help="Download a version and print the directory.")
@click.argument("address")
@click.option("-d", "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Download into DIR (default ./artifacts/<name>:v<N>).")
@click.option("--path-prefix", metavar="P", help="Only the files whose path starts with P.")
@click.option("--clean", is_flag=True, help="Also delete files in DIR that the version does not hold.")
@click.option("--force", is_flag=True, help="Overwrite files in DIR that were edited locally (they are listed either way).")
@json_option
@pass_state
def pull_cmd(state: State, address: str, directory: Path | None, path_prefix: str | None, clean: bool, force: bool) -> None:
    """Download a version, verified, and print the directory.

    Files already in DIR with the version's bytes are left alone; files fetched before (by
    any version) come from the local cache, and files pushed from this machine from their
    source, so a repeat pull transfers nothing. A file in DIR edited since it was pulled is
    never overwritten silently: pull refuses, listing the edited files (exit 3), unless
    --force, which restores them and says which.
    """
    art = state.api.artifact(address)
    selected = [f for f in art.file_list().files if not path_prefix or f.path.startswith(path_prefix)]
    bar = state.progress(sum(f.size for f in selected), art.qualified_name)

    def progress(nbytes: int, _files: int) -> None:
        if bar is not None:
            bar.update(nbytes)

    try:
        report = art.pull(directory, path_prefix=path_prefix, clean=clean, overwrite=force, progress=progress)
    except LocalEditsError as e:
        raise ConflictError(f"{len(e.paths)} file(s) in {e.root} were edited locally and differ from {art.qualified_name}: "
                            f"{', '.join(e.paths[:5])}{' ...' if len(e.paths) > 5 else ''}; nothing was changed. "
                            "Move them away, or pull --force to restore the version's bytes") from None
    finally:
        if bar is not None:
            bar.close()
    if state.json:
        state.emit_json({
            "address": art.qualified_name,
            "digest": f"sha256:{art.digest}",
            "directory": str(report.root),
            "placed": report.placed,
            "unchanged": report.unchanged,
            "restored": report.restored,
            "extra": report.extra,
            "removed": report.removed,
            "fetched_files": report.fetched_files,
            "fetched_bytes": report.fetched_bytes,
            "cached_bytes": report.cached_bytes,
            "local_bytes": report.local_bytes,
        })
        return
    state.out(str(report.root))
    state.note(_pull_summary(art.qualified_name, report, clean))


def _pull_summary(address: str, report: "DownloadReport", clean: bool) -> str:
    summary = f"pulled {address}: {len(report.placed)} placed, {len(report.unchanged)} unchanged"
    summary += f", {human_size(report.fetched_bytes)} fetched from the store"
    if report.local_bytes:
        summary += f", {human_size(report.local_bytes)} copied from files on this machine"
    if report.restored:
        summary += f"; restored {len(report.restored)} locally edited file(s): {', '.join(report.restored[:5])}"
        summary += " ..." if len(report.restored) > 5 else ""
    if report.extra and not clean:
        summary += f"; {len(report.extra)} extra file(s) in {report.root} (--clean removes them)"
    elif report.removed:
        summary += f"; removed {len(report.removed)} extra file(s)"
    return summary


@cli.command("push", short_help="Log a file or directory as a new version.")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("address")
@click.option("--type", "type_", required=True, metavar="TYPE", help="Artifact type, e.g. dataset or model.")
@click.option("--alias", "aliases", multiple=True, metavar="A", help="Also point alias A at the version (repeatable).")
@click.option("--description", metavar="D", help="Description of the artifact.")
@click.option("--metadata", metavar="JSON|@FILE", help="Metadata: a JSON object, or @file.json.")
@json_option
@pass_state
def push_cmd(state: State, path: Path, address: str, type_: str, aliases: tuple[str, ...],
             description: str | None, metadata: str | None) -> None:
    """Log the file or directory PATH as a new version of ADDRESS ([PROJECT/]NAME[:ALIAS]).

    Runs a run of job type "push" that logs it, so lineage shows where it came from.
    Contents identical to the latest version make no new version: that one is reported
    (and still receives the aliases).
    """
    import registry
    from .artifact import Artifact
    from .names import parse_address, validate_alias

    meta = _parse_metadata(metadata)
    parsed = parse_address(address, state.default_project, default_alias=None)
    if parsed.digest:
        raise InvalidNameError(f"cannot push to {address!r}: give [PROJECT/]NAME[:ALIAS], not a digest")
    wanted = list(dict.fromkeys([*aliases, *([parsed.alias] if parsed.alias and parsed.alias != "latest" else [])]))
    for alias in wanted:
        validate_alias(alias, settable=True)
    artifact = Artifact(parsed.name, type_, description=description, metadata=meta)
    if path.is_dir():
        artifact.add_dir(path)
    else:
        artifact.add_file(path)
    bar = state.progress(artifact.size, f"{parsed.collection}")
    try:
        with registry.init(project=parsed.project, job_type="push", url=state.url,
                           config={"source": str(path.resolve()), "aliases": wanted}) as run:
            logged = run.log_artifact(artifact, aliases=wanted, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    if state.json:
        state.emit_json({**version_json(logged), "created": bool(logged.created), "run": run.path})
        return
    if state.quiet:
        state.out(logged.qualified_name)
    elif logged.created:
        state.out(f"created {logged.qualified_name} ({_plural(logged.file_count, 'file')}, {human_size(logged.size)}; "
                  f"aliases: {', '.join(logged.aliases) or '-'}; run {run.path})")
    else:
        state.out(f"{logged.qualified_name} already holds these contents; no new version logged "
                  f"(aliases: {', '.join(logged.aliases) or '-'})")


# -- aliases ----------------------------------------------------------------------------------
@cli.group("alias", cls=RegistryGroup, short_help="Promote or demote versions (aliases).")
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
    from .names import validate_alias

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
    from .names import parse_address

    parsed = parse_address(collection, state.default_project, default_alias=None)
    if parsed.alias or parsed.digest:
        raise InvalidNameError(f"give PROJECT/NAME without an alias or digest, not {collection!r}")
    state.api.remove_alias(parsed.collection, alias)
    if state.json:
        state.emit_json({"collection": parsed.collection, "alias": alias, "removed": True})
    elif not state.quiet:
        state.out(f"removed alias {alias} from {parsed.collection}")


# -- runs -------------------------------------------------------------------------------------
@cli.command("runs", short_help="List the runs of a project.")
@click.argument("project", required=False)
@json_option
@pass_state
def runs_cmd(state: State, project: str | None) -> None:
    """List the runs of PROJECT, newest first (default: the --project default)."""
    project = project or state.default_project
    state.api.require_project(project)
    runs = state.api.runs(project)
    if state.json:
        state.emit_json([run_json(r) for r in runs])
        return
    if not runs:
        state.note(f"project {project} has no runs")
        return
    rows = [[r.id, r.name, r.job_type or "-", r.state, _when(r.created_at),
             ", ".join(ref.qualified_name.removeprefix(f"{project}/") for ref in r.record.inputs) or "-",
             ", ".join(ref.qualified_name.removeprefix(f"{project}/") for ref in r.record.outputs) or "-"] for r in runs]
    state.out(_table(rows, ["ID", "NAME", "JOB TYPE", "STATE", "STARTED", "INPUTS", "OUTPUTS"]))


@cli.command("run", short_help="Show one run: config, summary, inputs, outputs.")
@click.argument("path", metavar="PROJECT/RUN")
@json_option
@pass_state
def run_cmd(state: State, path: str) -> None:
    """Show one run (by id or name): job type, state, config, summary, inputs, outputs."""
    run = state.api.run(path)
    if state.json:
        state.emit_json(run_detail_json(run))
        return
    record = run.record
    lines = [
        f"{run.path} ({run.name})",
        f"job type:  {run.job_type or '-'}",
        f"state:     {run.state}" + (f" ({run.error})" if run.error else ""),
        f"started:   {_when(run.created_at)}",
        f"ended:     {_when(run.ended_at)}",
        f"host:      {record.host or '-'}" + (f"  git {record.git_commit[:12]}" if record.git_commit else ""),
    ]
    if run.tags:
        lines.append(f"tags:      {', '.join(run.tags)}")
    if run.notes:
        lines.append(f"notes:     {run.notes}")
    for title, values in (("config", run.config), ("summary", run.summary)):
        lines.append(f"{title}:" + ("" if values else " -"))
        lines += [f"  {k}: {_dump_value(v)}" for k, v in sorted(values.items())]
    lines.append("inputs:" + ("" if record.inputs else " -"))
    lines += [f"  {ref.qualified_name} ({ref.type})" for ref in record.inputs]
    lines.append("outputs:" + ("" if record.outputs else " -"))
    lines += [f"  {ref.qualified_name} ({ref.type})" for ref in record.outputs]
    if record.files:
        lines.append("files:")
        lines += [f"  {human_size(f.size)}  {f.path}" for f in record.files]
    state.out("\n".join(lines))


# -- lineage / diff / verify ------------------------------------------------------------------
@cli.command("lineage", short_help="Show what a version was made from and what it made.")
@click.argument("address")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what ADDRESS was made from.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what was made from ADDRESS.")
@click.option("--explode", is_flag=True, help="One node per version and run, instead of per type and job type.")
@click.option("--depth", type=click.IntRange(min=1), help="Follow at most this many runs away.")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json"]), default=None,
              help="Output format (default text; json with --json).")
@pass_state
def lineage_cmd(state: State, address: str, direction: str | None, explode: bool, depth: int | None, fmt: str | None) -> None:
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


@cli.command("diff", short_help="Compare two versions: files and metadata.")
@click.argument("old")
@click.argument("new")
@json_option
@pass_state
def diff_cmd(state: State, old: str, new: str) -> None:
    """Compare two versions: files added, removed, changed, renamed; metadata changes."""
    from .compare import diff_artifacts

    result = diff_artifacts(state.api.artifact(old), state.api.artifact(new))
    if state.json:
        state.emit_json(result)
        return
    files, meta = result["files"], result["metadata"]
    lines = [f"--- {result['old']}", f"+++ {result['new']}"]
    if result["identical"]:
        lines.append("no differences")
        state.out("\n".join(lines))
        return
    lines.append(f"files: {len(files['added'])} added, {len(files['removed'])} removed, {len(files['changed'])} changed, "
                 f"{len(files['renamed'])} renamed, {files['unchanged']} unchanged")
    lines += [f"  + {f['path']} ({human_size(f['size'])})" for f in files["added"]]
    lines += [f"  - {f['path']} ({human_size(f['size'])})" for f in files["removed"]]
    lines += [f"  ~ {f['path']} ({human_size(f['old_size'])} -> {human_size(f['new_size'])})" for f in files["changed"]]
    lines += [f"  > {f['old_path']} -> {f['new_path']}" for f in files["renamed"]]
    if any(meta.values()):
        lines.append("metadata:")
        lines += [f"  + {k}: {_dump_value(v)}" for k, v in meta["added"].items()]
        lines += [f"  - {k}: {_dump_value(v)}" for k, v in meta["removed"].items()]
        lines += [f"  ~ {k}: {_dump_value(v['old'])} -> {_dump_value(v['new'])}" for k, v in meta["changed"].items()]
    for key in ("type", "description"):
        if result[key]:
            lines.append(f"{key}: {_dump_value(result[key]['old'])} -> {_dump_value(result[key]['new'])}")
    state.out("\n".join(lines))


@cli.command("verify", short_help="Re-hash a download or the cache against a version.")
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
        raise NotFoundError(f"{directory} is not a directory: pull it first with `registry pull {address} -d {directory}`")
    art.verify(directory)
    where = str(directory) if directory is not None else "cache"
    if state.json:
        state.emit_json({"address": art.qualified_name, "where": where, "ok": True, "files": art.file_count})
    elif not state.quiet:
        state.out(f"ok: {art.file_count} file(s) of {art.qualified_name} in {where if directory else 'the cache'} match")


# -- cache / gc -------------------------------------------------------------------------------
@cli.group("cache", cls=RegistryGroup, short_help="Inspect or shrink the local download cache.")
def cache_group() -> None:
    """The local download cache (REGISTRY_CACHE_DIR)."""


@cache_group.command("info")
@json_option
@pass_state
def cache_info_cmd(state: State) -> None:
    """Where the cache is, how many files and bytes it holds, and its limit."""
    store = state.api.store
    cache = store.cache
    entries = [] if cache.is_store else cache.entries()
    info = {
        "directory": str(cache.root),
        "entries": len(entries),
        "size": sum(size for _, size, _ in entries),
        "max_size": store.settings.cache_max,
        "store_is_cache": cache.is_store,
    }
    if state.json:
        state.emit_json(info)
        return
    lines = [
        f"directory: {info['directory']}",
        f"entries:   {info['entries']}",
        f"size:      {human_size(info['size'])}",
        f"limit:     {human_size(info['max_size']) if info['max_size'] is not None else 'none (set REGISTRY_CACHE_MAX)'}",
    ]
    if cache.is_store:
        lines.append(f"note:      the store {store.url} is on this machine; its blobs serve as the cache")
    state.out("\n".join(lines))


@cache_group.command("clean")
@click.option("--max-size", type=ParsedType("SIZE", parse_size, int), metavar="SIZE",
              help="Evict least-recently-used files until the cache fits SIZE (e.g. 500MB, 20GiB). "
                   "Default: REGISTRY_CACHE_MAX, or 0 (empty the cache) when that is unset.")
@json_option
@pass_state
def cache_clean_cmd(state: State, max_size: int | None) -> None:
    """Shrink the cache; files a running download is placing are skipped."""
    store = state.api.store
    limit = max_size if max_size is not None else (store.settings.cache_max if store.settings.cache_max is not None else 0)
    files, freed = store.cache.clean(limit)
    if state.json:
        state.emit_json({"freed_files": files, "freed_bytes": freed, "max_size": limit, "store_is_cache": store.cache.is_store})
        return
    if store.cache.is_store:
        state.note(f"the store {store.url} is on this machine and serves as the cache: nothing to clean")
    elif not state.quiet:
        state.out(f"freed {human_size(freed)} in {files} file(s); cache limit {human_size(limit)}")


@cli.command("gc", short_help="Delete unreferenced blobs from the store.")
@click.option("--grace", type=ParsedType("DURATION", parse_duration, float), default="24h", show_default=True, metavar="DURATION",
              help="Keep unreferenced blobs younger than this (e.g. 24h, 30m, 7d, 0s).")
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@json_option
@pass_state
def gc_cmd(state: State, grace: float, dry_run: bool) -> None:
    """Delete blobs that no version, run file or logged image references.

    Only blobs older than the grace period go, and never one that a writer in flight relies
    on. Reports what was (or, with --dry-run, would be) freed.
    """
    from .gc import collect_garbage

    store = state.api.store
    if not dry_run:
        store.check_writable()
    report = collect_garbage(store, grace_seconds=grace, dry_run=dry_run)
    if state.json:
        state.emit_json({
            "dry_run": report.dry_run,
            "deleted": report.deleted,
            "deleted_count": len(report.deleted),
            "freed_bytes": report.freed_bytes,
            "kept_young": report.kept_young,
            "kept_in_flight": report.kept_in_flight,
            "referenced": report.referenced,
        })
        return
    verb = "would delete" if dry_run else "deleted"
    if not state.quiet or not dry_run:
        state.out(f"{verb} {len(report.deleted)} blob(s), {human_size(report.freed_bytes)}; kept {report.referenced} referenced, "
                  f"{report.kept_young} younger than the grace period, {report.kept_in_flight} in flight")


# -- web UI -----------------------------------------------------------------------------------
@cli.command("ui", short_help="Serve the web UI.")
@click.option("--url", "ui_url", metavar="URL", help="Store to browse (default: the global --url / REGISTRY_URL).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@pass_state
def ui_cmd(state: State, ui_url: str | None, host: str, port: int) -> None:
    """Browse projects, artifacts, runs and lineage in a web browser."""
    try:
        from . import ui
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        raise RegistryError(f"the web UI cannot start: {missing} is not installed; pip install '{DISTRIBUTION}[ui]'") from None
    ui.serve(url=ui_url or state.url, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``registry``)."""
    cli.main(args=argv, prog_name="registry")


if __name__ == "__main__":
    main()
