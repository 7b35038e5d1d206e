"""Errors a backend may raise besides the builtins.

Backends translate "missing" into ``FileNotFoundError`` and "already exists" into
``FileExistsError``; the few conditions with no builtin get a small type here.
"""


class PreconditionFailed(Exception):
    """A compare-and-swap lost: the object changed (or vanished) since it was read."""


class ContentMismatch(ValueError):
    """A file's bytes, as read for an upload, do not hash to the sha256 it was announced with (it
    changed after it was hashed); nothing stays stored under the key."""


class StorageUnavailable(OSError):
    """The store cannot be used as configured (unreachable, no bucket, no credentials)."""


class AccessDenied(StorageUnavailable, PermissionError):
    """The server refused a request these credentials are not allowed to make."""


class ConditionalWritesUnsupported(StorageUnavailable):
    """The server accepted a conditional write it should have refused."""
