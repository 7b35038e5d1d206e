"""What this machine has seen online, kept so that offline mode can resolve it later.

Each time an address is resolved online (``Api.artifact``, ``Run.use_artifact``), the version
record and, for an alias, the alias's target are written to the *seen* store under the cache
directory (``offline.seen_dir``), at the keys the real store uses; the file list is fetched
into the download cache. Offline, ``OfflineBackend`` reads them back. Remembering never fails
the call that resolved: a full disk only means less is known offline.
"""
from __future__ import annotations

import logging

from backends.local import LocalBackend

from . import keys
from .errors import IntegrityError
from .filelists import keep_file_list
from .names import Address, is_version_alias
from .offline import seen_dir
from .records import AliasRecord, DigestIndexEntry, VersionRecord, now
from .store import Store
from .versions import read_version

logger = logging.getLogger("registry")


def remember(store: Store, address: Address, record: VersionRecord) -> None:
    """Keep ``record`` (and the alias ``address`` named, if any) for offline use."""
    if store.offline:
        return
    try:
        seen = LocalBackend(seen_dir(store.settings))
        alias = address.alias or "latest"
        aliases = [] if address.digest or is_version_alias(alias) else [alias]
        remember_record(seen, record, aliases)
        if record.source is not None:  # a registry link: its source too (``link.source_artifact``)
            remember_record(seen, read_version(store.backend, record.source.project, record.source.name,
                                               record.source.version), [])
        keep_file_list(store, record)  # into the download cache (no request when it is there already)
    except (OSError, LookupError, IntegrityError) as e:  # the caller's own reads report real problems
        logger.info("registry: could not remember %s for offline use: %s", address, e)


def remember_record(seen: LocalBackend, record: VersionRecord, aliases: list[str]) -> None:
    """Write the version record and these aliases (pointing at it) into the seen store."""
    _write_if_changed(seen, keys.version(record.project, record.name, record.version), record.to_bytes())
    _write_if_changed(seen, keys.digest_index(record.project, record.name, record.digest, record.version),
                      DigestIndexEntry(version=record.version).to_bytes())
    for alias in aliases:
        body = AliasRecord(alias=alias, version=record.version, digest=record.digest, updated_at=now())
        key = keys.alias(record.project, record.name, alias)
        try:
            if AliasRecord.model_validate_json(seen.read(key)).version == record.version:
                continue
        except (FileNotFoundError, ValueError):
            pass
        seen.write(key, body.to_bytes())


def _write_if_changed(seen: LocalBackend, key: str, body: bytes) -> None:
    try:
        if seen.read(key) == body:
            return
    except FileNotFoundError:
        pass
    seen.write(key, body)
