"""The registry's one error hierarchy.

Each error also inherits the matching builtin, so ``except LookupError`` works too, and
carries the exit code the CLI uses. Messages are one line: what was wrong, what to do.
"""
from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the registry raises on purpose."""

    exit_code = 10


class NotFoundError(RegistryError, LookupError):
    """An artifact, version, alias, run or file that does not exist."""

    exit_code = 1


class InvalidNameError(RegistryError, ValueError):
    """A name, address, path or metadata value that breaks a rule."""

    exit_code = 2


class ConflictError(RegistryError):
    """A concurrent writer got there first (e.g. an alias moved since it was read)."""

    exit_code = 3


class LocalEditsError(ConflictError):
    """Files in a download directory were edited locally and would be overwritten."""

    def __init__(self, root: object, paths: list[str]) -> None:
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        super().__init__(
            f"{len(paths)} file(s) in {root} were edited locally and differ from the version: {shown}; "
            "move them away, or overwrite them (pull --force, download(overwrite=True))"
        )
        self.root = root
        self.paths = list(paths)


class IntegrityError(RegistryError):
    """Bytes or records that do not match their hash, or store contents that are malformed."""

    exit_code = 4


class StorageError(RegistryError, OSError):
    """The store cannot be reached or used as configured."""

    exit_code = 5


class PermissionDenied(StorageError, PermissionError):
    """The store refused a request these credentials may not make (S3 ``AccessDenied``): e.g. a
    read-only deployment identity pushing, or a writer moving a protected alias."""

    exit_code = 6


EXIT_CODES = {
    cls.__name__: cls.exit_code
    for cls in (NotFoundError, InvalidNameError, ConflictError, IntegrityError, StorageError,
                PermissionDenied, RegistryError)
}
