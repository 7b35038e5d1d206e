"""``registry export`` / ``registry import``: carry versions, their files, lineage and runs in one tar.

A bundle is a small store in a tar file: the same keys as in any store (``blobs/...``,
``projects/...``) plus ``bundle.json`` describing it. Export copies the selection into a
temporary local store (``mirror.copy``, verified) and packs it; import unpacks into a
temporary local store -- accepting only regular files under those prefixes, never a link, an
absolute path or ``..`` --, checks every blob against its sha256 and every record, then copies
it into the destination (``mirror.copy`` again, which refuses a diverged history).
"""
from __future__ import annotations

import io
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from backends.local import LocalBackend

from . import keys
from .errors import IntegrityError, InvalidNameError
from .hashing import sha256_file
from .mirror import CopyReport, copy, select
from .names import validate_path
from .packs import parse_index
from .records import Record, now, parse
from .settings import Settings
from .store import Store
from .tempnames import temp_beside

MANIFEST = "bundle.json"
_BLOB = re.compile(r"blobs/sha256/[0-9a-f]{2}/[0-9a-f]{62}")
_PACK = re.compile(r"packs/([0-9a-f]{2})/(\1[0-9a-f]{62})\.pack")
_INDEX = re.compile(r"index/([0-9a-f]{2})/(\1[0-9a-f]{62})\.idx")
_SKIPPED = (".tmp/", ".locks/", "inflight/", "gc/")


class BundleManifest(Record):
    """``bundle.json``: what was exported, from where, and when."""

    kind: str = "registry-bundle"
    source: str
    addresses: list[str]
    created_at: str


@dataclass
class ExportReport:
    path: str
    copy: CopyReport


def export_bundle(source: Store, out: Path, *, projects: list[str], addresses: list[str],
                  default_project: str) -> ExportReport:
    """Write ``out`` (a tar) holding the selected versions, their files, lineage and runs.

    >>> export_bundle(open_store(), Path("model.tar"), projects=[],            # doctest: +SKIP
    ...               addresses=["mnist-pipeline/trained-model:best"], default_project="uncategorized")
    """
    selection = select(source, projects, addresses, default_project)
    with tempfile.TemporaryDirectory(prefix="registry-export-") as temp:
        staging = _local_store(Path(temp) / "store", source.settings)
        report = copy(source, staging, selection)
        manifest = BundleManifest(source=source.url, addresses=[*projects, *addresses],
                                  created_at=now().isoformat())
        _pack(Path(temp) / "store", manifest, Path(out))
    return ExportReport(path=str(out), copy=report)


def import_bundle(dest: Store, bundle: Path) -> CopyReport:
    """Verify every byte of ``bundle`` and commit what it holds into ``dest``."""
    with tempfile.TemporaryDirectory(prefix="registry-import-") as temp:
        root = Path(temp) / "store"
        _unpack(Path(bundle), root)
        _verify_blobs(root)
        staging = _local_store(root, dest.settings)
        projects = staging.backend.list_children(keys.projects_prefix())
        return copy(staging, dest, select(staging, projects, [], dest.settings.project))


def _local_store(root: Path, settings: Settings) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    return Store(settings.model_copy(update={"url": str(root), "mode": "online"}), backend=LocalBackend(root))


def _pack(root: Path, manifest: BundleManifest, out: Path) -> None:
    """Write the tar beside ``out`` and rename it into place: a bundle is whole or absent."""
    temp = temp_beside(out)
    try:
        with tarfile.open(temp, "w") as tar:
            info = tarfile.TarInfo(MANIFEST)
            body = manifest.to_bytes()
            info.size, info.mtime = len(body), int(now().timestamp())
            tar.addfile(info, io.BytesIO(body))
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                key = path.relative_to(root).as_posix()
                if not key.startswith(_SKIPPED):
                    tar.add(path, arcname=key, recursive=False)
        temp.replace(out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _unpack(bundle: Path, root: Path) -> None:
    """Extract only regular files at safe paths under the store prefixes; refuse anything else."""
    try:
        tar = tarfile.open(bundle, "r:*")  # noqa: SIM115 - opened here to turn its error into ours
    except (tarfile.TarError, OSError) as e:
        raise InvalidNameError(f"{bundle} is not a registry bundle (a tar file): {e}") from None
    with tar:
        names: set[str] = set()
        for member in tar:
            name = _checked_name(member, bundle)
            if name == MANIFEST:
                parse(BundleManifest, _read_member(tar, member), MANIFEST)
                names.add(name)
                continue
            if name in names:
                raise InvalidNameError(f"{bundle} holds {name!r} twice: refusing it")
            names.add(name)
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file, checked above
            with source, open(dest, "xb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        if MANIFEST not in names:
            raise InvalidNameError(f"{bundle} has no {MANIFEST}: it is not a registry bundle")


def _checked_name(member: tarfile.TarInfo, bundle: Path) -> str:
    name = member.name
    if not member.isreg():
        raise InvalidNameError(
            f"{bundle} holds {name!r}, which is not a regular file (a link or device): refusing it"
        )
    try:
        validate_path(name)  # no absolute paths, no '..', no backslashes or control characters
    except InvalidNameError:
        raise InvalidNameError(f"{bundle} holds an unsafe path {name!r}: refusing it") from None
    if name != MANIFEST and not name.startswith(keys.projects_prefix()) \
            and not any(form.fullmatch(name) for form in (_BLOB, _PACK, _INDEX)):
        raise InvalidNameError(f"{bundle} holds {name!r}, which is not part of a store: refusing it")
    return name


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    assert source is not None
    with source:
        return source.read(1 << 20)


def _verify_blobs(root: Path) -> None:
    """Every blob's and pack's bytes must hash to its name, and every pack index must parse,
    before anything reaches the destination."""
    blobs = root / keys.blob_prefix()
    for path in blobs.rglob("*") if blobs.is_dir() else []:
        if path.is_file():
            sha = keys.sha_of_blob_key(path.relative_to(root).as_posix())
            if sha256_file(path) != sha:
                raise IntegrityError(f"bundle blob {keys.blob(sha)} does not match its sha256: "
                                     "the bundle is corrupt; nothing was imported")
    packs = root / keys.packs_prefix()
    for path in packs.rglob("*.pack") if packs.is_dir() else []:
        if sha256_file(path) != path.stem:
            raise IntegrityError(f"bundle pack {keys.pack(path.stem)} does not match its sha256: "
                                 "the bundle is corrupt; nothing was imported")
    indexes = root / keys.pack_index_prefix()
    for path in indexes.rglob("*.idx") if indexes.is_dir() else []:
        parse_index(path.read_bytes(), f"bundle {keys.pack_index(path.stem)}")

