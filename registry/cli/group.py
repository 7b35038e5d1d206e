"""The top-level ``registry`` group: global options, the commands in the order ``-h`` and
docs/CLI.md list them, ``main``."""
from __future__ import annotations

import click

from .. import __version__
from .errors import RegistryGroup
from .state import State

# name -> "module:command", in the order of `registry -h` and docs/CLI.md; each module is
# imported when its command is named (RegistryGroup)
COMMANDS = {
    "ls": ".artifacts:ls_cmd", "show": ".artifacts:show_cmd", "pull": ".transfer:pull_cmd",
    "push": ".transfer:push_cmd", "alias": ".aliases:alias_group", "link": ".lifecycle:link_cmd",
    "unlink": ".lifecycle:unlink_cmd", "tag": ".lifecycle:tag_cmd", "delete": ".lifecycle:delete_cmd",
    "history": ".lifecycle:history_cmd", "runs": ".runs:runs_cmd", "run": ".runs:run_cmd",
    "lineage": ".audit:lineage_cmd", "diff": ".audit:diff_cmd", "verify": ".audit:verify_cmd",
    "sync": ".moving:sync_cmd", "copy": ".moving:copy_cmd", "export": ".moving:export_cmd",
    "import": ".moving:import_cmd", "cache": ".maintenance:cache_group", "gc": ".maintenance:gc_cmd",
    "migrate": ".maintenance:migrate_cmd", "retention": ".retention:retention_group", "ui": ".web:ui_cmd",
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RegistryGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.option("--url", envvar=None, metavar="URL",
              help="Store to use: s3://bucket/prefix, file:///path or a directory (overrides REGISTRY_URL).")
@click.option("--project", metavar="PROJECT",
              help="Default project for addresses without one (overrides REGISTRY_PROJECT).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON instead of text (every listing and show command).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only the essential result; no notes or progress bars.")
@click.option("--offline", is_flag=True,
              help="Send nothing over the network: log to the local outbox (publish it with "
                   "`registry sync`), read what this machine has seen (same as REGISTRY_MODE=offline).")
@click.option("--debug", is_flag=True, help="Show the traceback when a command fails.")
@click.version_option(version=__version__, prog_name="registry", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, url: str | None, project: str | None, as_json: bool, quiet: bool,
        offline: bool, debug: bool) -> None:
    """Share ML artifacts (versioned datasets and models) on S3 or a local directory.

    ADDRESS is [PROJECT/]NAME[:ALIAS|:vN|@sha256:DIGEST]; without an alias it means
    :latest, without a project the --project / REGISTRY_PROJECT default.

    \b
    Environment: REGISTRY_URL, REGISTRY_PROJECT, REGISTRY_CACHE_DIR, REGISTRY_CACHE_MAX,
    REGISTRY_LINK_MODE, REGISTRY_WORKERS, REGISTRY_MODE; S3 endpoint and credentials are boto3's own
    (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE...).
    Exit codes: 0 ok, 1 not found, 2 usage or invalid name, 3 conflict, 4 integrity
    failure, 5 storage or configuration error, 10 other error.
    """
    state = ctx.ensure_object(State)
    state.url, state.project, state.quiet, state.debug, state.offline = url, project, quiet, debug, offline
    state.json = state.json or as_json


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``registry``)."""
    cli.main(args=argv, prog_name="registry")
