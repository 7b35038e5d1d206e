"""The top-level ``registry`` group: global options, the commands in the order ``-h`` and
docs/CLI.md list them, ``main``."""
from __future__ import annotations

import click

from .. import __version__
from .aliases import alias_group
from .artifacts import ls_cmd, show_cmd
from .audit import diff_cmd, lineage_cmd, verify_cmd
from .errors import RegistryGroup
from .lifecycle import delete_cmd, history_cmd, link_cmd, tag_cmd, unlink_cmd
from .maintenance import cache_group, gc_cmd, migrate_cmd
from .moving import copy_cmd, export_cmd, import_cmd, sync_cmd
from .retention import retention_group
from .runs import run_cmd, runs_cmd
from .state import State
from .transfer import pull_cmd, push_cmd
from .web import ui_cmd

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RegistryGroup, context_settings=CONTEXT_SETTINGS)
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


# The order here is the order of `registry -h` and docs/CLI.md.
for _command in (ls_cmd, show_cmd, pull_cmd, push_cmd, alias_group, link_cmd, unlink_cmd, tag_cmd,
                 delete_cmd, history_cmd, runs_cmd, run_cmd, lineage_cmd, diff_cmd, verify_cmd, sync_cmd,
                 copy_cmd, export_cmd, import_cmd, cache_group, gc_cmd, migrate_cmd, retention_group, ui_cmd):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``registry``)."""
    cli.main(args=argv, prog_name="registry")
