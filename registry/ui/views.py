"""The pages: module-level views on the ``ui`` blueprint, each reading only through ``registry.Api``.

The blueprint carries the templates, the static files and the app-wide hooks (read-only
methods, the host check, security headers, error pages), so an app that registers it and
puts an ``Api`` under ``API_KEY`` in its config serves the whole UI (``create_app`` does).
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .. import __version__
from ..api import Api, ApiRun, ArtifactCollection
from ..artifact import Artifact
from ..errors import IntegrityError, InvalidNameError, NotFoundError, StorageError
from ..lineage import Direction
from ..names import validate_alias, validate_name, validate_path
from ..records import FileEntry
from . import charts, error_pages, formats, links, safety
from . import graph as graphs
from .paging import Page, paginate
from .tree import file_tree

API_KEY = "REGISTRY_API"
"""App config: the ``registry.Api`` every page reads through."""
PAGE_SIZE_KEY = "REGISTRY_UI_PAGE_SIZE"
"""App config: artifacts and runs per page of a project (default ``PAGE_SIZE``)."""
PAGE_SIZE = 50
VERSION_PAGE = 50
FILES_PAGE = 500
DIRECTIONS: tuple[Direction, ...] = ("both", "upstream", "downstream")
_SHA = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"v(0|[1-9][0-9]{0,17})")

bp = Blueprint("ui", __name__, static_folder="static", template_folder="templates", static_url_path="/static")
bp.before_app_request(safety.refuse_unsafe_requests)
bp.after_app_request(safety.add_security_headers)
bp.app_errorhandler(NotFoundError)(error_pages.not_found)
bp.app_errorhandler(InvalidNameError)(error_pages.not_found)
bp.app_errorhandler(IntegrityError)(error_pages.damaged)
bp.app_errorhandler(StorageError)(error_pages.unavailable)
bp.app_errorhandler(HTTPException)(error_pages.http_error)
_FILTERS: dict[str, Callable[..., str]] = {
    "size": formats.human_size, "when": formats.when, "duration": formats.duration,
    "pretty": formats.pretty_json, "cell": formats.json_cell, "num": charts.fmt,
}
for _name, _filter in _FILTERS.items():
    bp.add_app_template_filter(_filter, _name)
for _helper in (links.url_with, links.artifact_url, links.run_url):
    bp.add_app_template_global(_helper)


@bp.app_context_processor
def _page_globals() -> dict[str, str]:
    return {"store_url": api().url, "version": __version__}


def api() -> Api:
    return current_app.config[API_KEY]


def _arg_int(name: str, default: int = 1) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _by_type(collections: list[ArtifactCollection]) -> list[tuple[str, list[ArtifactCollection]]]:
    groups: dict[str, list[ArtifactCollection]] = {}
    for c in sorted(collections, key=lambda c: (c.type, c.name)):
        groups.setdefault(c.type, []).append(c)
    return list(groups.items())


# -- projects ------------------------------------------------------------------------------------
@bp.get("/")
def projects() -> str:
    client = api()
    rows = [(p, len(client.artifact_names(p)), len(client.run_ids(p))) for p in client.projects()]
    return render_template("projects.html", projects=rows)


@bp.get("/projects/<project>")
def project(project: str) -> str:
    client = api()
    collections = client.artifacts(validate_name(project, "project"))
    run_count = len(client.run_ids(project))  # one listing; run records are read per page below
    if not collections and not run_count:
        client.require_project(project)
    type_filter = request.args.get("type") or None
    job_filter = request.args.get("job_type") or None
    size = current_app.config.get(PAGE_SIZE_KEY, PAGE_SIZE)
    shown = sorted((c for c in collections if type_filter in (None, c.type)), key=lambda c: (c.type, c.name))
    art_page = paginate(shown, _arg_int("apage"), size, "apage")
    if job_filter:  # a filter needs every run's job type
        runs = client.runs(project)
        matching = [r for r in runs if (r.job_type or "") == job_filter]
        run_page = paginate(matching, _arg_int("rpage"), size, "rpage")
    else:  # the newest runs up to the page asked for: a project of 100,000 runs reads one page's worth
        pages_needed = max(1, min(_arg_int("rpage"), math.ceil(run_count / size)))
        runs = client.runs(project, limit=pages_needed * size)
        run_page = paginate(runs, _arg_int("rpage"), size, "rpage", total=run_count)
    return render_template(
        "project.html", project=project, art_page=art_page, groups=_by_type(art_page.items),
        run_page=run_page, type_filter=type_filter, job_filter=job_filter,
        all_types=sorted({c.type for c in collections}), all_jobs=sorted({r.job_type or "" for r in runs}),
    )


# -- artifacts -----------------------------------------------------------------------------------
@bp.get("/projects/<project>/artifacts/<name>")
def artifact_latest(project: str, name: str) -> ResponseReturnValue:
    return redirect(_version_url(project, name, "latest"))


def _version_url(project: str, name: str, ref: str) -> str:
    """The ``vN`` page an alias names now (the query arguments kept)."""
    version = api().artifact(f"{project}/{name}:{ref}").version
    query: Mapping[str, Any] = request.args  # Any: else mypy checks the values against url_for's _external
    return url_for("ui.artifact_version", project=project, name=name, ref=version, **query)


@bp.get("/projects/<project>/artifacts/<name>/<ref>")
def artifact_version(project: str, name: str, ref: str) -> ResponseReturnValue:
    validate_name(project, "project")
    validate_name(name, "artifact name")
    if not _VERSION.fullmatch(ref):
        validate_alias(ref)
        return redirect(_version_url(project, name, ref))
    client = api()
    artifact = client.artifact(f"{project}/{name}:{ref}")
    number = artifact.record.version
    aliases = client.aliases(f"{project}/{name}")
    tab = request.args.get("tab", "overview")
    tab = tab if tab in TABS else "overview"
    context: dict[str, Any] = {
        "project": project, "name": name, "artifact": artifact, "record": artifact.record, "tab": tab,
        "number": number, "aliases": aliases, "version_aliases": aliases.get(number, []),
        "vpage": _number_page(client, f"{project}/{name}", number),
    }
    context.update(TABS[tab](client, artifact))
    return render_template("artifact.html", **context)


def _number_page(client: Api, collection: str, number: int) -> Page[int]:
    """The page of version numbers (newest first) that holds ``number``, unless ``vpage`` asks for another."""
    newest_first = client.version_numbers(collection)[::-1]
    default = newest_first.index(number) // VERSION_PAGE + 1 if number in newest_first else 1
    return paginate(newest_first, _arg_int("vpage", default), VERSION_PAGE, "vpage")


def _overview_tab(client: Api, artifact: Artifact) -> dict[str, Any]:
    record = artifact.record
    logged_by, logged_by_missing = None, False
    if record.created_by is not None:
        try:
            logged_by = client.run(f"{record.created_by.project}/{record.created_by.id}", by_name=False)
        except NotFoundError:
            logged_by_missing = True
    return {"logged_by": logged_by, "logged_by_missing": logged_by_missing, "used_by": client.used_by(record)}


def _metadata_tab(client: Api, artifact: Artifact) -> dict[str, Any]:
    return {"metadata_json": formats.pretty_json(artifact.record.metadata)}


def _files_tab(client: Api, artifact: Artifact) -> dict[str, Any]:
    directory = request.args.get("dir", "")
    tree = file_tree(artifact.file_list().files, validate_path(directory) if directory else "")
    if tree is None:
        raise NotFoundError(f"{directory!r} is not a directory of {artifact.qualified_name}")
    return {"tree": tree, "file_page": paginate(tree.files, _arg_int("fpage"), FILES_PAGE, "fpage")}


def _lineage_tab(client: Api, artifact: Artifact) -> dict[str, Any]:
    explode = request.args.get("explode", "") in ("1", "true", "on", "yes")
    requested = request.args.get("direction", "both")
    direction: Direction = requested if requested in DIRECTIONS else "both"
    lineage = client.lineage(artifact.qualified_name, direction=direction)
    view = lineage.view(explode)
    href = functools.partial(links.node_href, project=artifact.project, explode=explode, direction=direction)
    layout = graphs.layout(view, href, grouped=not explode)
    return {"explode": explode, "direction": direction, "layout": layout,
            "graph_text": lineage.to_text(explode=explode), "node_count": len(view.nodes)}


def _history_tab(client: Api, artifact: Artifact) -> dict[str, Any]:
    """The audit log of the artifact (or registry collection), newest first."""
    return {"audit": client.audit_trail(f"{artifact.project}/{artifact.name}")[::-1]}


TABS = {"overview": _overview_tab, "metadata": _metadata_tab, "files": _files_tab, "lineage": _lineage_tab,
        "history": _history_tab}
"""The tabs of a version's page, each adding what it shows to the template's context."""


@bp.get("/projects/<project>/artifacts/<name>/<ref>/files/<path:path>")
def artifact_file(project: str, name: str, ref: str, path: str) -> Response:
    validate_name(project, "project")
    validate_name(name, "artifact name")
    if not _VERSION.fullmatch(ref):
        abort(404)
    artifact = api().artifact(f"{project}/{name}:{ref}")
    # only paths in the version's file list, as exact strings
    entry = artifact.file_list().by_path().get(path)
    if entry is None:
        abort(404, description="no such file in this version")
    if entry.ref is not None:  # its bytes are not in the store, and a URI from the store is not followed
        abort(404, description="this file is a reference: download the version to fetch it from its source")
    return _send_file(entry)


def _send_file(entry: FileEntry) -> Response:
    """A verified file, always as a download (never rendered on the UI's origin)."""
    return send_file(api().cached_file(entry), mimetype="application/octet-stream", as_attachment=True,
                     download_name=PurePosixPath(entry.path).name, etag=entry.sha256, conditional=True,
                     max_age=0)


# -- runs ----------------------------------------------------------------------------------------
@bp.get("/projects/<project>/runs/<run_id>")
def run(project: str, run_id: str) -> str:
    validate_name(project, "project")
    validate_name(run_id, "run id")
    found = api().run(f"{project}/{run_id}")
    rows = found.history()
    return render_template("run.html", project=project, run=found, record=found.record,
                           media=charts.run_media(rows), history_rows=len(rows), summary=found.summary,
                           config=found.config)


@bp.get("/projects/<project>/runs/<run_id>/images/<sha>")
def run_image(project: str, run_id: str, sha: str) -> Response:
    validate_name(project, "project")
    validate_name(run_id, "run id")
    if not _SHA.fullmatch(sha):
        abort(404)
    found = api().run(f"{project}/{run_id}")
    data = _run_for_images(api(), found.path, found.record.history_chunks, found.state).image(sha)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


@functools.lru_cache(maxsize=64)
def _run_for_images(client: Api, path: str, history_chunks: int, state: str) -> ApiRun:
    """One ``ApiRun`` per run and history length, so the 32 images of a page read the history once."""
    return client.run(path, by_name=False)


@bp.get("/projects/<project>/runs/<run_id>/files/<path:path>")
def run_file(project: str, run_id: str, path: str) -> Response:
    validate_name(project, "project")
    validate_name(run_id, "run id")
    found = api().run(f"{project}/{run_id}")
    entry = next((f for f in found.files() if f.path == path), None)  # only files the run saved
    if entry is None:
        abort(404, description="this run saved no such file")
    return _send_file(entry)
