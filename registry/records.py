"""The JSON records kept in the store, modelled with pydantic (see docs/FORMAT.md).

Everything the registry reads back goes through ``parse``, so truncated JSON, an unknown
schema or a field of the wrong shape becomes one ``IntegrityError`` naming the key.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)
from pydantic_core import CoreSchema, core_schema

from .errors import IntegrityError
from .keys import SCHEMA_VERSION
from .names import validate_digest, validate_name, validate_path, validate_path_set

Model = TypeVar("Model", bound=BaseModel)


def now() -> datetime:
    return datetime.now(timezone.utc)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: equal values give equal bytes (and equal hashes)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode()


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    SCHEMAS: ClassVar[tuple[int, ...]] = (SCHEMA_VERSION,)
    """The schema numbers this version of registry reads for this kind of record."""
    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value not in cls.SCHEMAS:
            raise ValueError(
                f"schema {value} is not supported by this version of registry (expects "
                f"{' or '.join(map(str, cls.SCHEMAS))}); upgrade registry"
            )
        return value

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", by_alias=True))


def parse(model: type[Model], data: bytes, key: str) -> Model:
    """Read a record, or raise ``IntegrityError`` naming the key and the problem."""
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "record"
        raise IntegrityError(
            f"malformed record {key}: {where}: {first.get('msg')}; repair or delete it"
        ) from None
    except ValueError as e:
        raise IntegrityError(f"malformed record {key}: {e}; repair or delete it") from None


class ArtifactRef(BaseModel):
    """A pointer from a run to one artifact version."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    project: str
    name: str
    version: int
    type: str
    digest: str

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}:v{self.version}"


class RunRef(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    project: str
    id: str


def _omit_none(data: dict[str, Any], *fields: str) -> dict[str, Any]:
    """Drop optional fields that are absent, so records written without them keep their bytes."""
    for name in fields:
        if name in data and data[name] is None:
            del data[name]
    return data


class VersionRecord(Record):
    """``projects/<p>/artifacts/<name>/versions/v<N>.json``: immutable once written.

    Schema 1: ``digest`` is the sha256 of one file-list blob. Schema 2 (docs/FORMAT.md, format 2):
    ``digest`` is the sha256 of the root manifest page, and ``packs`` names the packs that held
    the version's chunks when it was written (a hint: gc may have repacked them since).
    """

    SCHEMAS: ClassVar[tuple[int, ...]] = (1, 2)

    project: str
    name: str
    version: int = Field(ge=0)
    type: str
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    digest: str
    size: int = Field(ge=0)
    file_count: int = Field(ge=0)
    created_at: datetime
    created_by: RunRef | None = None
    commit_id: str
    source: ArtifactRef | None = None
    """Set on a registry link (``registry/<collection>:vN``): the version whose contents it is."""
    packs: tuple[str, ...] | None = None
    """Schema 2 only: ids of the packs its chunks were written to or found in (absent otherwise)."""

    @model_serializer(mode="wrap")
    def _omit_absent_packs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler(self), "packs")

    @property
    def paged(self) -> bool:
        """Whether ``digest`` names a root manifest page (format 2) rather than a file list."""
        return self.schema_version == 2

    @field_validator("project", "name", "type")
    @classmethod
    def _names(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return validate_digest(value)

    def ref(self) -> ArtifactRef:
        return ArtifactRef(project=self.project, name=self.name, version=self.version, type=self.type,
                           digest=self.digest)


class AliasRecord(Record):
    """``.../aliases/<alias>.json``: moved only by compare-and-swap."""

    alias: str
    version: int = Field(ge=0)
    digest: str
    updated_at: datetime


class DigestIndexEntry(Record):
    """``.../digests/<digest>/v<N>.json``: written before the version record it names."""

    version: int = Field(ge=0)


class UsedByEntry(Record):
    """``.../used-by/v<N>/<run project>--<run id>.json``: a run that used this version."""

    run: RunRef
    used_at: datetime


class InflightMarker(Record):
    """``inflight/<writer id>.json``: blobs a writer relies on, protected from ``gc`` while it runs."""

    started_at: datetime
    blobs: list[str] = Field(default_factory=list)


class GcLock(Record):
    """``gc/<id>.json``: a collector is running; writers re-check found blobs after it ends."""

    started_at: datetime
    dry_run: bool = False


class Reference(BaseModel):
    """Where a file that is not in the store lives, and what it was when logged (``add_reference``).

    With ``checksum`` the entry's sha256 is the content's; without it, the sha256 stands in for
    this identity (uri, etag, version, modification time, size) and the source is checked against them.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)
    uri: str
    checksum: bool
    etag: str | None = None
    version_id: str | None = None
    last_modified: str | None = None


Chunks = tuple[tuple[str, int], ...]
AnyEntry = TypeVar("AnyEntry", bound="FileEntry")


class FileEntry:
    """One file of a version: path, sha256, size, and a reference or a chunk list if it has one.

    A plain slotted class rather than a pydantic model: a million-file version holds a million
    of these, and a model costs ~490 bytes and ~15 µs each, this ~70 bytes and ~1 µs. Pydantic
    still validates and serializes it inside records (``__get_pydantic_core_schema__``): a page
    or file list with a malformed entry fails to parse as before.
    """

    __slots__ = ("chunks", "path", "ref", "sha256", "size")
    path: str
    sha256: str
    size: int
    ref: Reference | None
    """Set only on a reference; absent from the JSON otherwise, so older entries keep their bytes."""
    chunks: Chunks | None
    """Format 2, files of ``chunking.SMALL_FILE_MAX`` bytes or more: (chunk sha256, length) in
    file order. Absent for a file stored whole (its chunk id is its own sha256)."""

    def __init__(self, path: str, sha256: str, size: int, ref: Reference | None = None,
                 chunks: Chunks | None = None) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"invalid size {size!r} for {path!r}: expected a whole number of bytes")
        if ref is not None and not isinstance(ref, Reference):
            raise ValueError(f"invalid reference for {path!r}: {ref!r}")
        _fill(self, validate_path(path), validate_digest(sha256), size, ref,
              None if chunks is None else tuple((validate_digest(c), n) for c, n in chunks))

    @classmethod
    def trusted(cls: type[AnyEntry], path: str, sha256: str, size: int, ref: Reference | None = None,
                chunks: Chunks | None = None) -> AnyEntry:
        """An entry from values already checked (a validated path, a hash just computed): no checks."""
        entry = cls.__new__(cls)
        _fill(entry, path, sha256, size, ref, chunks)
        return entry

    def replace(self, **changes: Any) -> FileEntry:
        """A copy with some fields changed, unchecked (as pydantic's ``model_copy``)."""
        fields = {name: getattr(self, name) for name in FileEntry.__slots__}
        return FileEntry.trusted(**{**fields, **changes})

    def chunk_list(self) -> Chunks:
        """The chunks that make up this file's bytes: its own sha256 when stored whole."""
        return self.chunks if self.chunks is not None else ((self.sha256, self.size),)

    def to_json(self) -> dict[str, Any]:
        """The entry as stored: ``ref`` and ``chunks`` only when set."""
        data: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.ref is not None:
            data["ref"] = self.ref.model_dump(mode="json", by_alias=True)
        if self.chunks is not None:
            data["chunks"] = [list(chunk) for chunk in self.chunks]
        return data

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"FileEntry is immutable: use replace({name}=...)")

    def key(self) -> tuple:
        """The fields that make two entries equal (all of them: an entry is its values)."""
        return (self.path, self.sha256, self.size, self.ref, self.chunks)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileEntry) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name)!r}" for name in ("ref", "chunks")
                        if getattr(self, name) is not None)
        return f"FileEntry(path={self.path!r}, sha256={self.sha256!r}, size={self.size}{extra})"

    def __reduce__(self) -> tuple:
        return (FileEntry.trusted, self.key())

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def field(schema: CoreSchema, required: bool = True) -> Any:
            return core_schema.typed_dict_field(schema, required=required)

        fields = core_schema.typed_dict_schema({
            "path": field(core_schema.str_schema()),
            "sha256": field(core_schema.str_schema()),
            "size": field(core_schema.int_schema(ge=0)),
            "ref": field(core_schema.nullable_schema(handler.generate_schema(Reference)), required=False),
            "chunks": field(core_schema.nullable_schema(handler.generate_schema(Chunks)), required=False),
        })
        built = core_schema.no_info_after_validator_function(lambda data: cls(**data), fields)
        return core_schema.json_or_python_schema(
            json_schema=built,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), built]),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.to_json),
        )


def _fill(entry: FileEntry, path: str, sha256: str, size: int, ref: Reference | None,
          chunks: Chunks | None) -> None:
    set_slot = object.__setattr__
    set_slot(entry, "path", path)
    set_slot(entry, "sha256", sha256)
    set_slot(entry, "size", size)
    set_slot(entry, "ref", ref)
    set_slot(entry, "chunks", chunks)


class FileList(Record):
    """A version's contents: canonical JSON sorted by path, stored as a blob; its hash is the digest."""

    files: tuple[FileEntry, ...]

    @field_validator("files")
    @classmethod
    def _sorted_and_safe(cls, files: tuple[FileEntry, ...]) -> tuple[FileEntry, ...]:
        paths = [f.path for f in files]
        if paths != sorted(paths):
            raise ValueError("files are not sorted by path")
        for path in paths:  # entries built elsewhere may have skipped FileEntry's own check
            validate_path(path)
        validate_path_set(paths)
        return files

    @classmethod
    def build(cls, entries: list[FileEntry]) -> FileList:
        return cls(files=tuple(sorted(entries, key=lambda e: e.path)))

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}


class HistoryImage(BaseModel):
    model_config = ConfigDict(defer_build=True)
    type: Literal["image"] = Field(default="image", alias="_type")
    sha256: str
    width: int
    height: int
    caption: str | None = None


class RunRecord(Record):
    """``projects/<p>/runs/<id>/run.json``: written only by the run itself."""

    model_config = ConfigDict(extra="ignore", frozen=False, defer_build=True)
    project: str
    id: str
    name: str
    job_type: str | None = None
    state: Literal["running", "finished", "crashed"] = "running"
    error: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    notes: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    host: str | None = None
    python: str | None = None
    git_commit: str | None = None
    inputs: list[ArtifactRef] = Field(default_factory=list)
    outputs: list[ArtifactRef] = Field(default_factory=list)
    files: list[FileEntry] = Field(default_factory=list)
    history_chunks: int = 0


class AliasBase(Record):
    """Outbox ``sync/alias-bases/<alias key>``: where an alias pointed (None: nowhere) before it
    first moved offline; ``sync`` moves the real alias only if it still points there."""

    version: int | None = None


class SyncProgress(Record):
    """Outbox ``sync/published/<version key>``: the real version an outbox version became."""

    version: int = Field(ge=0)
    commit_id: str


# -- lifecycle, registry links and the audit log -------------------------------------------------
class Tombstone(Record):
    """``.../deleted/v<N>.json``: written once when a version is deleted (or unlinked, or retired by
    a retention policy); the version record stays so that its number is never reused."""

    version: int = Field(ge=0)
    deleted_at: datetime
    reason: Literal["delete", "unlink", "retention", "ttl"]


class Annotations(Record):
    """``.../annotations/v<N>.json``: a version's mutable state, moved by compare-and-swap. Once it
    exists it is complete: its description and metadata replace the version record's."""

    tags: list[str] = Field(default_factory=list)
    ttl_seconds: int | None = Field(default=None, gt=0)
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime


class CollectionInfo(Record):
    """``.../collection.json``: an artifact's (or registry collection's) description and tags."""

    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    updated_at: datetime


class RetentionPolicy(Record):
    """``projects/<p>/retention.json`` or ``.../artifacts/<name>/retention.json``: which versions
    ``registry retention apply`` (and ``gc``) deletes. A version goes when it is older than
    ``delete_older_than_seconds`` (if set) and not among the ``keep_last`` newest (if set).
    Versions a user alias points at stay unless ``keep_aliased`` is false (then their aliases go
    with them); versions linked into the registry always stay."""

    keep_last: int | None = Field(default=None, ge=0)
    keep_aliased: bool = True
    delete_older_than_seconds: int | None = Field(default=None, gt=0)
    updated_at: datetime


class LinkIndexEntry(Record):
    """``.../linked-to/v<N>/<project>--<collection>.json``: written before a link record in that
    collection; readers confirm it against the collection's records."""

    project: str
    collection: str
    linked_at: datetime


class Actor(BaseModel):
    """Who did something: the machine, the OS user, and the store's caller identity when it tells."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    host: str
    user: str
    identity: str | None = None
    """e.g. the ARN STS GetCallerIdentity returns on AWS; None where the store cannot tell."""


class AuditEntry(Record):
    """``.../audit/<time-ordered id>.json``: one action on an artifact or registry collection,
    written once (write-if-absent) and never changed."""

    at: datetime
    actor: Actor
    action: str
    """``alias.set``, ``alias.remove``, ``link``, ``unlink``, ``delete``, ``retention.delete``,
    ``tags.set``, ``ttl.set``, ``description.set``, ``metadata.set``..."""
    subject: str
    """The version acted on, ``project/name:vN`` (or ``project/name`` for the whole artifact)."""
    alias: str | None = None
    before: str | None = None
    after: str | None = None
