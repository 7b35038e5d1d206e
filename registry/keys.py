"""Every key the registry writes, in one place (documented in docs/FORMAT.md)."""
from __future__ import annotations

import secrets
import time

SCHEMA_VERSION = 1


def blob(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:]}"


def blob_prefix() -> str:
    return "blobs/sha256/"


def sha_of_blob_key(key: str) -> str:
    _, _, two, rest = key.split("/", 3)
    return two + rest


def packs_prefix() -> str:
    return "packs/"


def pack(pack_id: str) -> str:
    """A pack of chunks (format 2), named by the sha256 of its bytes."""
    return f"packs/{pack_id[:2]}/{pack_id}.pack"


def pack_index_prefix() -> str:
    return "index/"


def pack_index(pack_id: str) -> str:
    """A copy of a pack's footer, so the dedup index is built from small objects alone."""
    return f"index/{pack_id[:2]}/{pack_id}.idx"


def pack_id_of_index_key(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".idx")


def index_sets_prefix() -> str:
    return "index-sets/"


def index_set(set_id: str) -> str:
    """Many packs' indexes in one object (written by gc), named by the sha256 of its bytes."""
    return f"index-sets/{set_id[:2]}/{set_id}.set"


def set_id_of_key(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".set")


def projects_prefix() -> str:
    return "projects/"


def artifacts_prefix(project: str) -> str:
    return f"projects/{project}/artifacts/"


def artifact_prefix(project: str, name: str) -> str:
    return f"projects/{project}/artifacts/{name}/"


def versions_prefix(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}versions/"


def version(project: str, name: str, number: int) -> str:
    return f"{versions_prefix(project, name)}v{number}.json"


def aliases_prefix(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}aliases/"


def alias(project: str, name: str, alias_name: str) -> str:
    return f"{aliases_prefix(project, name)}{alias_name}.json"


def digest_index_prefix(project: str, name: str, digest: str) -> str:
    return f"{artifact_prefix(project, name)}digests/{digest}/"


def digest_index(project: str, name: str, digest: str, number: int) -> str:
    return f"{digest_index_prefix(project, name, digest)}v{number}.json"


def used_by_prefix(project: str, name: str, number: int) -> str:
    return f"{artifact_prefix(project, name)}used-by/v{number}/"


def used_by(project: str, name: str, number: int, run_project: str, run_id: str) -> str:
    return f"{used_by_prefix(project, name, number)}{run_project}--{run_id}.json"


def new_run_id(now: float | None = None) -> str:
    """A run id that sorts by start time: 8 hex digits of seconds since the epoch, then 6 random.

    So the newest runs of a project are the last names under ``runs/``, and a listing that
    starts after a moment (``start_after=run_id_prefix(t)``) returns only the runs since then.
    Older stores hold 8-hex random ids; readers accept both.
    """
    return f"{run_id_prefix(time.time() if now is None else now)}{secrets.token_hex(3)}"


def run_id_prefix(moment: float) -> str:
    return f"{int(moment):08x}"


def runs_prefix(project: str) -> str:
    return f"projects/{project}/runs/"


def run(project: str, run_id: str) -> str:
    return f"{runs_prefix(project)}{run_id}/run.json"


def history_prefix(project: str, run_id: str) -> str:
    return f"{runs_prefix(project)}{run_id}/history/"


def history_chunk(project: str, run_id: str, seq: int) -> str:
    return f"{history_prefix(project, run_id)}{seq:06d}.jsonl"


def inflight_prefix() -> str:
    return "inflight/"


def inflight(writer_id: str) -> str:
    return f"inflight/{writer_id}.json"


def gc_lock_prefix() -> str:
    return "gc/"


def gc_lock(gc_id: str) -> str:
    return f"gc/{gc_id}.json"


# -- an offline outbox's own keys (registry/offline.py, registry/outbox_sync.py) -------------------
def sync_alias_base(alias_key: str) -> str:
    return f"sync/alias-bases/{alias_key}"


def sync_published(project: str, name: str, number: int) -> str:
    return f"sync/published/{version(project, name, number)}"


# -- lifecycle, registry links and the audit log (docs/FORMAT.md, "Lifecycle") ------------------
def tombstones_prefix(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}deleted/"


def tombstone(project: str, name: str, number: int) -> str:
    """Written once (write-if-absent) when a version is deleted; the version record stays, so
    its number is never reused."""
    return f"{tombstones_prefix(project, name)}v{number}.json"


def annotations_prefix(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}annotations/"


def version_annotations(project: str, name: str, number: int) -> str:
    """A version's mutable state (tags, TTL, edited description and metadata), moved by
    compare-and-swap."""
    return f"{annotations_prefix(project, name)}v{number}.json"


def collection_info(project: str, name: str) -> str:
    """An artifact's (or registry collection's) own description and tags, moved by compare-and-swap."""
    return f"{artifact_prefix(project, name)}collection.json"


def artifact_retention(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}retention.json"


def project_retention(project: str) -> str:
    return f"projects/{project}/retention.json"


def links_prefix(project: str, name: str, number: int) -> str:
    return f"{artifact_prefix(project, name)}linked-to/v{number}/"


def link_index(project: str, name: str, number: int, link_project: str, collection: str) -> str:
    """A source version's note that ``link_project/collection`` links it; readers confirm it."""
    return f"{links_prefix(project, name, number)}{link_project}--{collection}.json"


def audit_prefix(project: str, name: str) -> str:
    return f"{artifact_prefix(project, name)}audit/"


def audit_entry(project: str, name: str, entry_id: str) -> str:
    """One audit entry, written once under a unique, time-ordered id: concurrent writers never collide."""
    return f"{audit_prefix(project, name)}{entry_id}.json"
