"""The ``--json`` output: the shapes docs/CLI.md documents, built from library objects.

Shapes are stable: fields may be added, never renamed or removed (tests/test_cli.py checks
them). Commands whose JSON only echoes their own arguments (``alias set``, ``verify``...)
build that small dict inline.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only
    from .. import ApiRun, Artifact, ArtifactFile
    from ..api import ArtifactCollection
    from ..download import DownloadReport
    from ..gc import GcReport
    from ..records import AuditEntry
    from ..retention import RetentionReport
    from ..store import Store


def json_default(value: Any) -> Any:
    """How values JSON has no type for are printed: times ISO 8601, paths and the rest as strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def version_json(art: Artifact) -> dict[str, Any]:
    """A **version** object: ``ls PROJECT/NAME``, ``show``, ``push`` and each collection's ``latest``."""
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
        "description": art.description,
        "tags": art.tags,
    }


def collection_json(collection: ArtifactCollection) -> dict[str, Any]:
    """One artifact of ``ls PROJECT``; ``size`` is its latest version's."""
    return {
        "project": collection.project,
        "name": collection.name,
        "type": collection.type,
        "version_count": collection.version_count,
        "latest": version_json(collection.latest),
        "aliases": {alias: f"v{v}" for v, names in sorted(collection.aliases.items()) for alias in names},
        "size": collection.latest.size,
        "updated_at": collection.updated_at.isoformat(),
    }


def show_json(art: Artifact, shown: list[ArtifactFile], truncated: bool,
              logged_by: ApiRun | None, used_by: list[ApiRun]) -> dict[str, Any]:
    """``show``: a version plus its metadata, (at most ``--files``) files and runs."""
    return {
        **version_json(art),
        "metadata": art.metadata,
        "files": [{"path": f.path, "size": f.size, "sha256": f.digest, "ref": f.ref} for f in shown],
        "files_truncated": truncated,
        "logged_by": run_json(logged_by) if logged_by else None,
        "used_by": [run_json(r) for r in used_by],
        "ttl_seconds": int(art.ttl.total_seconds()) if art.ttl else None,
        "link_of": art.source_qualified_name if art.is_link else None,
        "linked_as": [a.qualified_name for a in art.linked_artifacts],
    }


def run_json(run: ApiRun) -> dict[str, Any]:
    """A **run** object: ``runs``, and the runs ``show`` names."""
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


def run_detail_json(run: ApiRun) -> dict[str, Any]:
    """``run``: a run object plus config, summary and what the run recorded about itself."""
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


def pull_json(art: Artifact, report: DownloadReport) -> dict[str, Any]:
    """``pull``: which files were placed, kept, restored or extra, and where the bytes came from."""
    return {
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
    }


def push_json(logged: Artifact, run_path: str) -> dict[str, Any]:
    """``push``: the version, whether it is new, and the run that logged it."""
    return {**version_json(logged), "created": bool(logged.created), "run": run_path}


def gc_json(report: GcReport) -> dict[str, Any]:
    """``gc``: what was (or, dry run, would be) deleted and why the rest was kept."""
    return {
        "dry_run": report.dry_run,
        "deleted": report.deleted,
        "deleted_count": len(report.deleted),
        "freed_bytes": report.freed_bytes,
        "kept_young": report.kept_young,
        "kept_in_flight": report.kept_in_flight,
        "referenced": report.referenced,
        "repacked": report.repacked,
        "repacked_count": len(report.repacked),
        "rewritten_bytes": report.rewritten_bytes,
        "new_packs": report.new_packs,
        "index_sets_written": report.index_sets_written,
        "index_sets_deleted": report.index_sets_deleted,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One entry of ``history``: what was done to which version, by whom, when, from -> to."""
    return {
        "at": entry.at.isoformat(),
        "action": entry.action,
        "subject": entry.subject,
        "alias": entry.alias,
        "before": entry.before,
        "after": entry.after,
        "host": entry.actor.host,
        "user": entry.actor.user,
        "identity": entry.actor.identity,
    }


def retention_json(report: RetentionReport) -> dict[str, Any]:
    """``retention apply`` (and the ``retention`` part of ``gc``): versions deleted or that would be."""
    return {
        "dry_run": report.dry_run,
        "deleted": [{"address": r.address, "reason": r.reason, "rule": r.rule, "aliases": list(r.aliases)}
                    for r in report.retired],
        "kept": [{"address": a, "why": why} for a, why in report.kept],
        "skipped": [{"address": a, "error": err} for a, err in report.skipped],
    }


def cache_info_json(store: Store) -> dict[str, Any]:
    """``cache info``: a local store's blobs serve as the cache, so it has no entries of its own."""
    cache = store.cache
    entries = [] if cache.is_store else cache.entries()
    return {
        "directory": str(cache.root),
        "entries": len(entries),
        "size": sum(size for _, size, _ in entries),
        "max_size": store.settings.cache_max,
        "store_is_cache": cache.is_store,
    }
