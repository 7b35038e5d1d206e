"""The Flask application: read-only pages over one store, read through ``registry.Api``."""
from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import HTTPException

from .. import __version__
from ..api import Api
from ..errors import (
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    RegistryError,
    StorageError,
)
from ..lineage import Node
from ..names import parse_address, validate_alias, validate_name, validate_path
from ..settings import format_size
from ..versions import aliases_of, resolve, version_numbers
from . import charts, queries
from . import graph as graphs

PAGE_SIZE = 50
VERSIONS_PAGE = 50
FILES_PAGE = 500
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
TABS = ("overview", "metadata", "files", "lineage")
DIRECTIONS = ("both", "upstream", "downstream")
_SHA = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"v(0|[1-9][0-9]{0,17})")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(url: str | None = None, api: Api | None = None, *, allowed_hosts: Iterable[str] | None = LOOPBACK_NAMES,
               page_size: int = PAGE_SIZE) -> Flask:
    """The web UI for the store at ``url`` (or ``REGISTRY_URL``, or the local default), or for ``api``.

    Every page is read-only (GET and HEAD only). ``allowed_hosts`` are the names the
    ``Host`` header may carry (default: loopback only, which stops DNS-rebinding pages from
    reading the store through a browser); ``None`` accepts any host.
    """
    api = api or Api(url)
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config["REGISTRY_API"] = api
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    # -- safety ------------------------------------------------------------------------------
    @app.before_request
    def guard() -> Response | None:
        if request.method not in ("GET", "HEAD"):
            abort(405)
        if allowed is not None:
            name = _host_name(request.host.lower())
            if name not in allowed and not ("127.0.0.1" in allowed and is_loopback(name)):
                abort(400, description=f"host {name!r} is not allowed: open the UI at http://127.0.0.1 or http://localhost")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    @app.errorhandler(NotFoundError)
    @app.errorhandler(InvalidNameError)
    def not_found(error: RegistryError):
        return render_template("error.html", code=404, title="Not found", message=str(error)), 404

    @app.errorhandler(IntegrityError)
    def integrity(error: IntegrityError):
        return render_template("error.html", code=500, title="Store contents are damaged", message=str(error)), 500

    @app.errorhandler(StorageError)
    def storage(error: StorageError):
        return render_template("error.html", code=503, title="Store unavailable", message=str(error)), 503

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 405:
            return render_template("error.html", code=405, title="Read-only", message="This UI only reads: use GET."), 405, {"Allow": "GET, HEAD"}
        return render_template("error.html", code=error.code, title=error.name, message=error.description), error.code or 500

    # -- template helpers ------------------------------------------------------------------
    app.jinja_env.globals.update(store_url=api.url, version=__version__, url_with=url_with, artifact_url=artifact_url,
                                 run_url=run_url)

    app.add_template_filter(human_size, "size")
    app.add_template_filter(when, "when")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(pretty_json, "pretty")
    app.add_template_filter(queries.json_cell, "cell")
    app.add_template_filter(charts.fmt, "num")

    def arg_int(name: str, default: int = 1) -> int:
        try:
            return int(request.args.get(name, default))
        except ValueError:
            return default

    def name_arg(value: str, kind: str) -> str:
        return validate_name(value, kind)

    # -- pages -------------------------------------------------------------------------------
    @app.get("/")
    def projects():
        rows = [(p, *queries.project_counts(api, p)) for p in api.projects()]
        return render_template("projects.html", projects=rows)

    @app.get("/projects/<project>")
    def project(project: str):
        name_arg(project, "project")
        if not queries.project_exists(api, project):
            raise NotFoundError(f"project {project} does not exist in {api.url}")
        type_filter = request.args.get("type") or None
        job_filter = request.args.get("job_type") or None
        collections = queries.project_collections(api, project)
        all_types = sorted({c.type for c in collections})
        if type_filter:
            collections = [c for c in collections if c.type == type_filter]
        collections.sort(key=lambda c: (c.type, c.name))
        art_page = queries.paginate(collections, arg_int("apage"), page_size, "apage")
        runs = api.runs(project)
        all_jobs = sorted({r.job_type or "" for r in runs})
        if job_filter:
            runs = [r for r in runs if (r.job_type or "") == job_filter]
        run_page = queries.paginate(runs, arg_int("rpage"), page_size, "rpage")
        return render_template(
            "project.html", project=project, art_page=art_page, groups=queries.collections_by_type(art_page.items),
            run_page=run_page, type_filter=type_filter, job_filter=job_filter, all_types=all_types, all_jobs=all_jobs,
        )

    @app.get("/projects/<project>/artifacts/<name>")
    def artifact_latest(project: str, name: str):
        return redirect(_version_url(project, name, "latest"))

    def _version_url(project: str, name: str, ref: str) -> str:
        record = resolve(api.store.backend, parse_address(f"{project}/{name}:{ref}", project))
        return url_for("artifact_version", project=project, name=name, ref=f"v{record.version}", **request.args)

    @app.get("/projects/<project>/artifacts/<name>/<ref>")
    def artifact_version(project: str, name: str, ref: str):
        name_arg(project, "project")
        name_arg(name, "artifact name")
        if not _VERSION.fullmatch(ref):
            validate_alias(ref)
            return redirect(_version_url(project, name, ref))
        number = int(ref[1:])
        artifact = api.artifact(f"{project}/{name}:v{number}")
        record = artifact.record
        tab = request.args.get("tab", "overview")
        if tab not in TABS:
            tab = "overview"
        numbers = version_numbers(api.store.backend, project, name)
        aliases = aliases_of(api.store.backend, project, name)
        newest_first = sorted(numbers, reverse=True)
        default_vpage = newest_first.index(number) // VERSIONS_PAGE + 1 if number in newest_first else 1
        vpage = queries.paginate(newest_first, arg_int("vpage", default_vpage), VERSIONS_PAGE, "vpage")
        context: dict[str, Any] = dict(project=project, name=name, artifact=artifact, record=record, tab=tab,
                                       vpage=vpage, aliases=aliases, number=number)
        if tab == "overview":
            logged_by, logged_by_missing = None, False
            if record.created_by is not None:
                try:
                    logged_by = api.run(f"{record.created_by.project}/{record.created_by.id}")
                except NotFoundError:
                    logged_by_missing = True
            context.update(logged_by=logged_by, logged_by_missing=logged_by_missing, used_by=api.used_by(record))
        elif tab == "metadata":
            context.update(metadata_json=pretty_json(record.metadata))
        elif tab == "files":
            directory = request.args.get("dir", "")
            if directory:
                directory = validate_path(directory)
            tree = queries.file_tree(artifact.file_list().files, directory)
            if tree is None:
                raise NotFoundError(f"{directory!r} is not a directory of {artifact.qualified_name}")
            context.update(tree=tree, file_page=queries.paginate(tree.files, arg_int("fpage"), FILES_PAGE, "fpage"))
        else:
            explode = request.args.get("explode", "") in ("1", "true", "on", "yes")
            direction = request.args.get("direction", "both")
            if direction not in DIRECTIONS:
                direction = "both"
            lineage = api.lineage(f"{project}/{name}:v{number}", direction=direction)
            view = lineage.view(explode)
            placed = graphs.layout(view, functools.partial(_node_href, project=project, explode=explode, direction=direction),
                                   grouped=not explode)
            context.update(explode=explode, direction=direction, layout=placed, graph_text=lineage.to_text(explode=explode),
                           node_count=len(view.nodes))
        return render_template("artifact.html", **context)

    @app.get("/projects/<project>/artifacts/<name>/<ref>/files/<path:path>")
    def artifact_file(project: str, name: str, ref: str, path: str):
        name_arg(project, "project")
        name_arg(name, "artifact name")
        if not _VERSION.fullmatch(ref):
            abort(404)
        artifact = api.artifact(f"{project}/{name}:{ref}")
        entry = artifact.file_list().by_path().get(path)  # only paths in the version's file list
        if entry is None:
            abort(404, description="no such file in this version")
        return _send_blob(entry.sha256, entry.size, entry.path)

    @app.get("/projects/<project>/runs/<run_id>")
    def run(project: str, run_id: str):
        name_arg(project, "project")
        name_arg(run_id, "run id")
        found = api.run(f"{project}/{run_id}")
        rows = found.history()
        media = charts.run_media(rows)
        return render_template("run.html", project=project, run=found, record=found.record, media=media,
                               history_rows=len(rows), summary=found.summary, config=found.config)

    @functools.lru_cache(maxsize=64)
    def _run_images(project: str, run_id: str, chunks: int, state: str) -> frozenset[str]:
        return frozenset(charts.image_shas(api.run(f"{project}/{run_id}").history()))

    @app.get("/projects/<project>/runs/<run_id>/images/<sha>")
    def run_image(project: str, run_id: str, sha: str):
        name_arg(project, "project")
        name_arg(run_id, "run id")
        if not _SHA.fullmatch(sha):
            abort(404)
        found = api.run(f"{project}/{run_id}")
        if sha not in _run_images(project, found.id, found.record.history_chunks, found.state):
            abort(404, description="this run logged no such image")
        data = api.store.blobs.read(sha, what="image")
        response = Response(data, mimetype="image/png")
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return response

    @app.get("/projects/<project>/runs/<run_id>/files/<path:path>")
    def run_file(project: str, run_id: str, path: str):
        name_arg(project, "project")
        name_arg(run_id, "run id")
        found = api.run(f"{project}/{run_id}")
        entry = next((f for f in found.record.files if f.path == path), None)  # only files the run saved
        if entry is None:
            abort(404, description="this run saved no such file")
        return _send_blob(entry.sha256, entry.size, entry.path)

    def _send_blob(sha256: str, size: int, path: str):
        """A verified blob, named by a file-list entry, always as a download (never rendered)."""
        local = api.store.cache.ensure(sha256, size, what=path)
        response = send_file(local, mimetype="application/octet-stream", as_attachment=True,
                             download_name=PurePosixPath(path).name, etag=sha256, conditional=True, max_age=0)
        return response

    # -- links ---------------------------------------------------------------------------------
    def _node_href(node: Node, project: str, explode: bool, direction: str) -> str | None:
        if not explode:
            if node.kind == "artifact":
                return url_for("project", project=project, type=node.type, _anchor="artifacts")
            return url_for("project", project=project, job_type=node.type, _anchor="runs")
        if node.kind == "artifact":
            node_project, _, rest = node.ref.partition("/")
            node_name, _, number = rest.rpartition(":v")
            return url_for("artifact_version", project=node_project, name=node_name, ref=f"v{number}", tab="lineage",
                           explode=1, direction=direction)
        node_project, _, run_id = node.ref.partition("/")
        return url_for("run", project=node_project, run_id=run_id)

    return app


# -- template helpers (module level so they are easy to test) -----------------------------------
def url_with(_anchor: str | None = None, **changes: Any) -> str:
    """The current page's URL with some query arguments changed (``None`` removes one)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint, **(request.view_args or {}), **args, _anchor=_anchor)


def artifact_url(ref, tab: str | None = None) -> str:
    """Link to an artifact version from an ``ArtifactRef`` or a ``VersionRecord``."""
    args = {"tab": tab} if tab else {}
    return url_for("artifact_version", project=ref.project, name=ref.name, ref=f"v{ref.version}", **args)


def run_url(project: str, run_id: str) -> str:
    return url_for("run", project=project, run_id=run_id)


def human_size(value: int | None) -> str:
    return "" if value is None else format_size(value)


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m {sec}s" if hours else f"{minutes}m {sec}s"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
