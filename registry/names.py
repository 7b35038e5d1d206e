"""Validation of every name, address and path that comes from a user or from the store.

One validator per kind of input, used when building, when logging and again when reading
records back, so a hostile record cannot smuggle a path past a later step.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidNameError

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_VERSION = re.compile(r"v(0|[1-9][0-9]*)")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PLAIN_SEGMENT = r"(?!\.\.?(?:/|\Z))[A-Za-z0-9_.+=@,~ -]{1,255}"
_PLAIN_PATH = re.compile(rf"{_PLAIN_SEGMENT}(?:/{_PLAIN_SEGMENT})*")
"""Paths of plain ASCII segments, none ``.`` or ``..``: safe and already NFC, so checked by one
match (a dataset of a million files checks every path on each read, write and download)."""
RESERVED_ALIASES = ("latest",)


def validate_name(value: object, kind: str = "name") -> str:
    """Project, artifact, alias, type and job-type names: letters, digits, ``-``, ``_``, ``.``; max 128."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or set(value) == {"."}:
        raise InvalidNameError(
            f"invalid {kind} {value!r}: use 1-128 letters, digits, '-', '_' or '.' (no '/', ':' or spaces)"
        )
    return value


def validate_alias(value: object, *, settable: bool = False) -> str:
    """An alias; with ``settable``, also refuse the ones the registry keeps itself."""
    alias = validate_name(value, "alias")
    if settable and (alias in RESERVED_ALIASES or _VERSION.fullmatch(alias)):
        raise InvalidNameError(
            f"alias {alias!r} is kept by the registry and cannot be set by hand: choose another name"
        )
    return alias


def is_version_alias(alias: str) -> bool:
    return bool(_VERSION.fullmatch(alias))


def validate_digest(value: str) -> str:
    digest = value.removeprefix("sha256:")
    if not _DIGEST.fullmatch(digest):
        raise InvalidNameError(f"invalid digest {value!r}: expected sha256:<64 lowercase hex digits>")
    return digest


REGISTRY_PROJECT = "registry"
"""The project holding the registry's collections (``registry/<collection>:production``)."""
_W_AND_B_REGISTRY_PREFIX = "wandb-registry-"
_W_AND_B_MODEL_REGISTRY = "model-registry"


def is_registry_project(project: str) -> bool:
    """``registry``, and W&B's names for a registry (``wandb-registry-<name>``, the older
    ``model-registry``), which all mean the one registry of a store."""
    return (project in (REGISTRY_PROJECT, _W_AND_B_MODEL_REGISTRY)
            or (project.startswith(_W_AND_B_REGISTRY_PREFIX) and project != _W_AND_B_REGISTRY_PREFIX))


def canonical_project(project: str) -> str:
    """``registry`` for any of W&B's registry names, else ``project`` unchanged."""
    return REGISTRY_PROJECT if is_registry_project(project) else project


@dataclass(frozen=True)
class Address:
    """``[project/]name[:alias|:vN|@sha256:<digest>]``, parsed and validated."""

    project: str
    name: str
    alias: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        tail = f"@sha256:{self.digest}" if self.digest else f":{self.alias}" if self.alias else ""
        return f"{self.project}/{self.name}{tail}"

    @property
    def collection(self) -> str:
        return f"{self.project}/{self.name}"


def parse_address(text: object, default_project: str, default_alias: str | None = "latest") -> Address:
    """Parse an artifact address; the project defaults to ``default_project``.

    >>> parse_address("mnist-raw:v1", "demo")
    Address(project='demo', name='mnist-raw', alias='v1', digest=None)
    """
    if not isinstance(text, str) or not text:
        raise InvalidNameError(f"invalid address {text!r}: use [project/]name[:alias|:vN|@sha256:<digest>]")
    rest, digest = text, None
    if "@" in rest:
        rest, raw_digest = rest.split("@", 1)
        digest = validate_digest(raw_digest)
    alias = None
    if ":" in rest:
        rest, alias = rest.split(":", 1)
        alias = validate_alias(alias)
        if digest:
            raise InvalidNameError(f"invalid address {text!r}: give an alias or a digest, not both")
    parts = rest.split("/")
    if len(parts) == 3 and is_registry_project(parts[1]):
        parts = parts[1:]  # W&B's "<org>/wandb-registry-model/<collection>": one registry here
    if len(parts) > 2:
        raise InvalidNameError(f"invalid address {text!r}: use [project/]name[:alias] (one '/' at most)")
    project = canonical_project(validate_name(parts[0] if len(parts) == 2 else default_project, "project"))
    name = validate_name(parts[-1], "artifact name")
    if alias is None and digest is None:
        alias = default_alias
    return Address(project, name, alias, digest)


# -- paths inside an artifact ------------------------------------------------------------------
def validate_path(path: object) -> str:
    """A relative POSIX path inside an artifact; anything that could escape a directory is refused.

    >>> validate_path("data/train.pt")
    'data/train.pt'
    """
    if isinstance(path, str) and _PLAIN_PATH.fullmatch(path):
        return path
    if not isinstance(path, str) or not path:
        raise InvalidNameError(f"invalid file path {path!r}: give a non-empty relative path")
    problem = _path_problem(path)
    if problem:
        raise InvalidNameError(f"unsafe file path {path!r}: {problem}")
    return unicodedata.normalize("NFC", path)


def _path_problem(path: str) -> str | None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode (lone surrogate)"
    if _CONTROL.search(path):
        return "control characters are not allowed"
    if "\\" in path:
        return "backslashes are not allowed; use '/'"
    if path.startswith("/"):
        return "absolute paths are not allowed; use a path relative to the artifact root"
    for part in path.split("/"):
        if part == "":
            return "empty path segments ('//' or a trailing '/') are not allowed"
        if part in (".", ".."):
            return "'.' and '..' segments are not allowed"
        if _DRIVE.match(part):
            return "drive letters are not allowed (a component starts with 'X:'); use a relative path"
        if len(part.encode()) > 255:
            return "a path component is longer than 255 bytes"
    return None


def validate_path_set(paths: Iterable[str]) -> None:
    """Refuse sets of paths that collide on disk: twins after normalisation or case folding
    (of a file or of any directory above it), or a file that is also a directory."""
    PathSet().add_all(paths)


class PathSet:
    """Paths checked against each other as they are added (``validate_path_set`` all at once):
    a draft adding a million files in batches checks each batch against what it holds, not
    the whole set again. Lower-case ASCII paths, the usual case, are their own folded form and
    cost no second string."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}
        self._dirs: dict[str, str] = {}

    def add_all(self, paths: Iterable[str]) -> None:
        files, dirs = self._files, self._dirs
        last_directory = ""  # a walk lists a directory's files together: its parents are checked once
        for path in paths:
            folded = _folded(path)
            if folded in files:
                raise InvalidNameError(
                    f"file paths {files[folded]!r} and {path!r} collide "
                    "(same name up to case or Unicode form): rename one"
                )
            if folded in dirs:
                raise _file_and_directory(path, dirs[folded])
            files[folded] = path
            directory = path.rpartition("/")[0]
            if not directory or directory == last_directory:
                continue
            last_directory = directory
            parts, folded_parts = path.split("/"), folded.split("/")
            for depth in range(1, len(parts)):
                key, original = "/".join(folded_parts[:depth]), "/".join(parts[:depth])
                known = dirs.get(key)
                if known is None:
                    if key in files:
                        raise _file_and_directory(files[key], original)
                    dirs[key] = original
                elif known != original:
                    raise InvalidNameError(
                        f"directories {known!r} and {original!r} collide "
                        "(same name up to case or Unicode form): rename one"
                    )


def _folded(path: str) -> str:
    if path.isascii():
        folded = path.lower()
        return path if folded == path else folded
    return unicodedata.normalize("NFC", path).casefold()


def _file_and_directory(file: str, directory: str) -> InvalidNameError:
    return InvalidNameError(
        f"{file!r} is a file but another path needs {directory!r} to be a directory: rename one"
    )
