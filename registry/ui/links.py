"""URLs between pages (endpoints of the ``ui`` blueprint), for views and templates alike."""
from __future__ import annotations

from typing import Any

from flask import request, url_for

from ..lineage import Node
from ..records import ArtifactRef, VersionRecord


def url_with(_anchor: str | None = None, **changes: Any) -> str:
    """The current page's URL with some query arguments changed (``None`` removes one)."""
    args: dict[str, Any] = dict(request.args.items())
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint or "ui.projects", **(request.view_args or {}), **args, _anchor=_anchor)


def artifact_url(ref: ArtifactRef | VersionRecord, tab: str | None = None) -> str:
    """Link to an artifact version from an ``ArtifactRef`` or a ``VersionRecord``."""
    args: dict[str, Any] = {"tab": tab} if tab else {}
    return url_for("ui.artifact_version", project=ref.project, name=ref.name, ref=f"v{ref.version}", **args)


def run_url(project: str, run_id: str) -> str:
    return url_for("ui.run", project=project, run_id=run_id)


def node_href(node: Node, project: str, explode: bool, direction: str) -> str | None:
    """Where a Graph View node leads: a type to the project filtered by it, an instance to its page.

    An exploded artifact node opens that version's own Graph View, so the lineage can be walked
    node by node.
    """
    if not explode:
        if node.kind == "artifact":
            return url_for("ui.project", project=project, type=node.type, _anchor="artifacts")
        return url_for("ui.project", project=project, job_type=node.type, _anchor="runs")
    if node.kind == "artifact":
        node_project, _, rest = node.ref.partition("/")
        node_name, _, number = rest.rpartition(":v")
        return url_for("ui.artifact_version", project=node_project, name=node_name, ref=f"v{number}",
                       tab="lineage", explode=1, direction=direction)
    node_project, _, run_id = node.ref.partition("/")
    return run_url(node_project, run_id)
