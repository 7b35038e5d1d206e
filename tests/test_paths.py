"""Hostile paths: nothing a user, a directory tree or a crafted record names can escape a root.

Building (``add_file``/``new_file``/``add_dir``), logging and downloading all pass every path
through ``registry.names.validate_path`` (and sets of paths through ``validate_path_set``).
The registry never URL-decodes, never expands ``~`` or ``$VARS`` and never strips ``#``
fragments: ``%2e%2e`` is a legal, literal file name that stays inside the root.

The download side is attacked with records written straight to the store (raw JSON, correct
digests), so only the path checks stand between a hostile file list and the filesystem.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath

import pytest

import registry
from registry.records import FileEntry
from backends import open_backend
from helpers import log_files, print_past_capture
from registry import keys

# name -> test id (each is tried on add_file, new_file, add_dir's prefix and a crafted record)
UNSAFE_NAMES: dict[str, str] = {
    "": "empty",
    "/etc/passwd": "absolute",
    "//server/share/x": "posix-unc",
    "..": "dotdot",
    "../escape.txt": "parent",
    "../../escape.txt": "parent-parent",
    "a/../../escape.txt": "dir-then-parents",
    "a/..": "trailing-dotdot",
    ".": "dot",
    "./a": "dot-segment",
    "a/./b": "inner-dot",
    "a//b": "empty-segment",
    "a/": "trailing-slash",
    "\\..\\escape.txt": "backslash-traversal",
    "..\\..\\escape.txt": "backslash-parents",
    "a\\b": "backslash",
    "\\\\server\\share\\x": "unc",
    "C:x": "drive-relative",
    "C:/Windows/x": "drive-absolute",
    "c:\\x": "drive-backslash",
    "sub/C:x": "drive-in-later-component",  # Windows: root / "sub" / "C:x" == "C:x", outside the root
    "a\0b": "nul",
    "a\nb": "newline",
    "a\rb": "carriage-return",
    "a\tb": "tab",
    "\x1b[31mred": "ansi-escape",
    "a\x7fb": "del",
    "a\x85b": "c1-nel",  # C1 control: a line break for str.splitlines
    "a\x9bb": "c1-csi",  # C1 control: a terminal escape introducer
    "x" * 256: "component-256-bytes",
    "d/" + "é" * 128: "component-256-utf8-bytes",
    "a\ud800b": "lone-surrogate",  # not encodable as UTF-8
    "a#/../../escape.txt": "fragment-then-traversal",
    "%2e%2e/../escape.txt": "encoded-then-traversal",
}

# Legal names that look dangerous: stored verbatim, and land inside the root under that literal name.
LITERAL_NAMES = [
    "%2e%2e/escape.txt",  # never URL-decoded
    "%2e%2e%2fescape.txt",
    "..%2f..%2fescape.txt",
    "%252e%252e/escape.txt",  # double-encoded
    "file#fragment.txt",
    "q?x=1.txt",
    "~/escape.txt",  # never expanded
    "$HOME/escape.txt",
    "...",  # three dots is an ordinary name
    "..a/b..",
    "café/naïve.txt",
]

COUNTS = {"unsafe_inputs": 0}


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest):
    """At the end of the module, print how many unsafe inputs were tried."""
    yield
    print_past_capture(request, f"[test_paths] unsafe inputs tried: {COUNTS['unsafe_inputs']}")


def _tried(n: int = 1) -> None:
    COUNTS["unsafe_inputs"] += n


def files_under(root: Path) -> set[str]:
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- building --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(UNSAFE_NAMES), ids=list(UNSAFE_NAMES.values()))
def test_add_file_refuses_unsafe_name(tmp_path: Path, name: str) -> None:
    _tried()
    src = tmp_path / "src.txt"
    src.write_text("x")
    art = registry.Artifact("data", type="dataset")
    with pytest.raises(registry.InvalidNameError):
        art.add_file(src, name=name)
    assert art.files() == []


@pytest.mark.parametrize("name", list(UNSAFE_NAMES), ids=list(UNSAFE_NAMES.values()))
def test_new_file_refuses_unsafe_name(name: str) -> None:
    _tried()
    art = registry.Artifact("data", type="dataset")
    with pytest.raises(registry.InvalidNameError):
        with art.new_file(name) as f:
            f.write("x")
    assert art.files() == []


@pytest.mark.parametrize("name", [n for n in UNSAFE_NAMES if n], ids=[v for n, v in UNSAFE_NAMES.items() if n])
def test_add_dir_refuses_unsafe_prefix(tmp_path: Path, name: str) -> None:
    _tried()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.txt").write_text("x")
    art = registry.Artifact("data", type="dataset")
    with pytest.raises(registry.InvalidNameError):
        art.add_dir(tree, name=name)
    assert art.files() == []


# File names that POSIX allows on disk but the registry must refuse when walking a tree.
ON_DISK_UNSAFE = [b"a\\b", b"..\\..\\escape.txt", b"C:x", b"a\nb", b"\x1b[31mred", b"a\xc2\x85b", b"bad\xffname"]


@pytest.mark.parametrize("raw", ON_DISK_UNSAFE, ids=[repr(r) for r in ON_DISK_UNSAFE])
def test_add_dir_refuses_unsafe_file_names_on_disk(tmp_path: Path, raw: bytes) -> None:
    _tried()
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "ok.txt").write_text("fine")
    with open(os.path.join(os.fsencode(tree / "sub"), raw), "wb") as f:
        f.write(b"hostile")
    art = registry.Artifact("data", type="dataset")
    with pytest.raises(registry.InvalidNameError):
        art.add_dir(tree)
    assert art.files() == []


def test_add_file_default_name_is_validated(tmp_path: Path) -> None:
    _tried()
    src = tmp_path / "a\\b.txt"  # a legal POSIX file name, an escape on Windows
    src.write_text("x")
    with pytest.raises(registry.InvalidNameError):
        registry.Artifact("data", type="dataset").add_file(src)


@pytest.mark.parametrize("name", LITERAL_NAMES)
def test_literal_names_that_look_encoded_are_kept_verbatim(tmp_path: Path, name: str) -> None:
    src = tmp_path / "src.txt"
    src.write_text("x")
    art = registry.Artifact("data", type="dataset")
    art.add_file(src, name=name)
    assert [f.path for f in art.files()] == [unicodedata.normalize("NFC", name)]


def test_windows_drive_in_a_later_component_would_escape() -> None:
    """Why ``sub/C:x`` is in the corpus: on Windows, joining it leaves the download root."""
    assert str(PureWindowsPath("root") / "sub" / "C:x") == "C:x"


# -- sets of paths ---------------------------------------------------------------------------
NFC = unicodedata.normalize("NFC", "café.txt")
NFD = unicodedata.normalize("NFD", "café.txt")
COLLIDING_PAIRS = {
    "nfc-vs-nfd": (NFC, NFD),
    "nfd-vs-nfc": (NFD, NFC),
    "case-only": ("Data.txt", "data.txt"),
    "case-only-dir": ("Dir/a.txt", "dir/b.txt"),
    "casefold-sharp-s": ("straße.txt", "STRASSE.txt"),
    "file-then-dir": ("a", "a/b"),
    "dir-then-file": ("a/b/c", "a/b"),
}


@pytest.mark.parametrize("pair", list(COLLIDING_PAIRS.values()), ids=list(COLLIDING_PAIRS))
def test_colliding_paths_are_refused(tmp_path: Path, pair: tuple[str, str]) -> None:
    _tried()
    first, second = pair
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("one")
    two.write_text("two")  # different contents: neither may silently replace the other
    art = registry.Artifact("data", type="dataset")
    art.add_file(one, name=first)
    with pytest.raises(registry.InvalidNameError):
        art.add_file(two, name=second)
    assert [f.path for f in art.files()] == [unicodedata.normalize("NFC", first)]


def test_colliding_names_in_one_tree_are_refused(tmp_path: Path) -> None:
    _tried()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "A.txt").write_text("upper")
    (tree / "a.txt").write_text("lower")
    with pytest.raises(registry.InvalidNameError, match="collide"):
        registry.Artifact("data", type="dataset").add_dir(tree)


def test_nfd_name_is_stored_nfc(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_text("x")
    art = registry.Artifact("data", type="dataset")
    art.add_file(src, name=NFD)
    assert [f.path for f in art.files()] == [NFC]


# -- symlinks when building ------------------------------------------------------------------
@pytest.fixture
def tree_with_links(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not take me")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "real.txt").write_text("real contents")
    return tree


def test_add_dir_refuses_a_link_to_a_file_outside(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "sub" / "leak.txt").symlink_to("../../outside/secret.txt")
    with pytest.raises(registry.InvalidNameError, match="outside"):
        registry.Artifact("data", type="dataset").add_dir(tree_with_links)


def test_add_dir_refuses_an_absolute_link_outside(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "leak.txt").symlink_to(tree_with_links.parent / "outside" / "secret.txt")
    with pytest.raises(registry.InvalidNameError, match="outside"):
        registry.Artifact("data", type="dataset").add_dir(tree_with_links)


def test_add_dir_refuses_a_link_to_a_directory_outside(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "sub" / "escape").symlink_to("../../outside", target_is_directory=True)
    with pytest.raises(registry.InvalidNameError, match="outside"):
        registry.Artifact("data", type="dataset").add_dir(tree_with_links)


def test_add_dir_refuses_a_chain_of_links_that_ends_outside(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "hop2").symlink_to("../outside/secret.txt")
    (tree_with_links / "sub" / "hop1").symlink_to("../hop2")
    with pytest.raises(registry.InvalidNameError, match="outside"):
        registry.Artifact("data", type="dataset").add_dir(tree_with_links)


def test_add_dir_refuses_a_dangling_link_with_a_typed_error(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "sub" / "gone.txt").symlink_to("../missing.txt")
    with pytest.raises(registry.RegistryError):
        registry.Artifact("data", type="dataset").add_dir(tree_with_links)


def test_add_dir_stores_a_link_inside_the_tree_by_content(store_url: str, tree_with_links: Path, tmp_path: Path) -> None:
    (tree_with_links / "sub" / "alias.txt").symlink_to("../real.txt")
    with registry.init(project="proj") as run:
        art = registry.Artifact("data", type="dataset")
        art.add_dir(tree_with_links)
        logged = run.log_artifact(art)
    assert {f.path for f in logged.files()} == {"real.txt", "sub/alias.txt"}
    root = Path(registry.Api(store_url).artifact("proj/data:v0").download(tmp_path / "dl"))
    copy = root / "sub" / "alias.txt"
    assert not copy.is_symlink() and copy.read_text() == "real contents"


def test_add_dir_with_reject_refuses_any_link(tree_with_links: Path) -> None:
    _tried()
    (tree_with_links / "sub" / "alias.txt").symlink_to("../real.txt")
    art = registry.Artifact("data", type="dataset")
    with pytest.raises(registry.InvalidNameError, match="symlink"):
        art.add_dir(tree_with_links, symlinks="reject")
    assert art.files() == []


def test_add_dir_with_reject_accepts_a_tree_without_links(tree_with_links: Path) -> None:
    art = registry.Artifact("data", type="dataset")
    art.add_dir(tree_with_links, symlinks="reject")
    assert [f.path for f in art.files()] == ["real.txt"]


# -- logging ---------------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_logging_revalidates_paths_that_bypassed_the_builder(store_url: str, tmp_path: Path) -> None:
    _tried()
    src = tmp_path / "src"
    src.write_text("x")
    art = registry.Artifact("data", type="dataset")
    art.add_file(src, name="ok.txt")
    good = art.draft.entries()[0]
    hostile = FileEntry.trusted(path="../../escape.txt", sha256=good.sha256, size=good.size)
    art.draft.entries = lambda: [hostile]  # type: ignore[method-assign]  # as a buggy or hostile builder would
    with registry.init(project="proj") as run:
        with pytest.raises(ValueError):  # InvalidNameError, or the record model's ValueError
            run.log_artifact(art)
    assert list(open_backend(store_url).list("projects/proj/artifacts/")) == []


# -- downloading crafted records -------------------------------------------------------------
def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_RAW: dict[str, object] = {}


def _raw_backend(store_url: str):
    """The bare backend (no registry validation), one client per store URL."""
    if store_url not in _RAW:
        _RAW.clear()  # a new test (and, with moto, a new mock): drop clients of earlier ones
        _RAW[store_url] = open_backend(store_url)
    return _RAW[store_url]


def craft_version(store_url: str, files: dict[str, bytes], *, project: str = "proj", name: str = "evil",
                  number: int = 0, raw_list: bytes | None = None) -> str:
    """Write blobs, a file list, a version record and ``latest`` straight to the store, bypassing
    the registry's validation; returns the file list digest."""
    backend = _raw_backend(store_url)
    entries = []
    for path, data in files.items():
        backend.write(keys.blob(sha(data)), data)
        entries.append({"path": path, "sha256": sha(data), "size": len(data)})
    body = raw_list if raw_list is not None else canonical({"schema": 1, "files": sorted(entries, key=lambda e: e["path"])})
    digest = sha(body)
    backend.write(keys.blob(digest), body)
    stamp = datetime.now(timezone.utc).isoformat()
    record = {
        "schema": 1, "project": project, "name": name, "version": number, "type": "dataset", "description": None,
        "metadata": {}, "digest": digest, "size": sum(len(d) for d in files.values()), "file_count": len(files),
        "created_at": stamp, "created_by": None, "commit_id": "crafted",
    }
    backend.write(keys.version(project, name, number), canonical(record))
    backend.write(keys.alias(project, name, "latest"),
                  canonical({"schema": 1, "alias": "latest", "version": number, "digest": digest, "updated_at": stamp}))
    return digest


HOSTILE_RECORD_PATHS = [n for n in UNSAFE_NAMES if n and n != "a\ud800b"] + ["a\ud800b"]


def make_sandbox(base: Path) -> Path:
    """A deep download root, so that ``../..`` lands in a place we can watch (``base``)."""
    root = base / "a" / "b" / "root"
    root.parent.mkdir(parents=True)
    return root


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    return make_sandbox(tmp_path / "sandbox")


def assert_nothing_written(sandbox: Path, before: set[str]) -> None:
    watched = sandbox.parent.parent.parent
    assert files_under(watched) == before
    assert not sandbox.exists() or not any(sandbox.iterdir())
    for leaked in ("/etc/passwd.part", "/escape.txt", "/tmp/escape.txt"):
        assert not Path(leaked).exists()


def _is_seaweed(store_url: str) -> bool:
    return store_url.startswith("s3://") and bool(os.environ.get("AWS_ENDPOINT_URL"))


def _download_outcome(store_url: str, name: str, sandbox: Path) -> str | None:
    """None when the hostile record was refused with a typed error naming it and wrote nothing; else the problem."""
    before = files_under(sandbox.parent.parent.parent)
    try:
        registry.Api(store_url).artifact(f"proj/{name}").download(sandbox)
    except registry.RegistryError as e:
        if keys.blob_prefix() not in str(e) and f"proj/{name}" not in str(e):
            return f"error does not name the record: {e}"
    except Exception as e:  # noqa: BLE001 - an untyped error is a finding too
        return f"untyped {type(e).__name__}: {e}"
    else:
        return "downloaded without error"
    try:
        assert_nothing_written(sandbox, before)
    except AssertionError as e:
        return f"wrote something: {e}"
    return None


# the real S3 server gets a representative subset (the full corpus runs on local and moto)
SEAWEED_SUBSET = ["../../escape.txt", "a/../../escape.txt", "/etc/passwd", "..\\..\\escape.txt", "C:x", "sub/C:x",
                  "a\0b", "a\x85b", "x" * 256, "%2e%2e/../escape.txt"]


@pytest.mark.parametrize("store_url", ["local", "moto", "seaweed"], indirect=True)
def test_crafted_records_with_hostile_paths_write_nothing(store_url: str, tmp_path: Path) -> None:
    """Each hostile path in its own crafted artifact (beside a harmless file): refused, nothing written."""
    problems = {}
    corpus = SEAWEED_SUBSET if _is_seaweed(store_url) else HOSTILE_RECORD_PATHS
    for i, path in enumerate(corpus):
        _tried()
        craft_version(store_url, {path: b"pwned\n", "fine.txt": b"fine\n"}, name=f"evil{i}")
        problem = _download_outcome(store_url, f"evil{i}", make_sandbox(tmp_path / f"sandbox{i}"))
        if problem:
            problems[UNSAFE_NAMES[path]] = problem
    assert problems == {}


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_crafted_records_with_colliding_paths_write_nothing(store_url: str, tmp_path: Path) -> None:
    problems = {}
    for i, (label, pair) in enumerate(COLLIDING_PAIRS.items()):
        _tried()
        craft_version(store_url, {pair[0]: b"one\n", pair[1]: b"two\n"}, name=f"twins{i}")
        problem = _download_outcome(store_url, f"twins{i}", make_sandbox(tmp_path / f"sandbox{i}"))
        if problem:
            problems[label] = problem
    assert problems == {}


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_crafted_single_file_download_is_checked_too(store_url: str, sandbox: Path) -> None:
    _tried()
    craft_version(store_url, {"../../escape.txt": b"pwned\n"})
    before = files_under(sandbox.parent.parent.parent)
    with pytest.raises(registry.RegistryError):
        registry.Api(store_url).artifact("proj/evil").file(sandbox)
    assert_nothing_written(sandbox, before)


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_crafted_record_with_hostile_project_or_name_is_refused(store_url: str, sandbox: Path) -> None:
    _tried(2)
    craft_version(store_url, {"fine.txt": b"fine\n"})
    backend = _raw_backend(store_url)
    key = keys.version("proj", "evil", 0)
    record = json.loads(backend.read(key))
    for field in ("project", "name"):
        backend.write(key, canonical({**record, field: "../../x"}))
        with pytest.raises(registry.IntegrityError, match=re.escape(key)):
            registry.Api(store_url).artifact("proj/evil:v0").download(sandbox)
    assert not sandbox.exists()


@pytest.mark.parametrize("store_url", ["local", "moto", "seaweed"], indirect=True)
def test_literal_names_land_inside_the_root(store_url: str, tmp_path: Path) -> None:
    problems = {}
    for i, path in enumerate(LITERAL_NAMES[:4] if _is_seaweed(store_url) else LITERAL_NAMES):
        craft_version(store_url, {path: b"literal\n"}, name=f"literal{i}")
        root = make_sandbox(tmp_path / f"sandbox{i}")
        watched = root.parent.parent.parent
        before = files_under(watched)
        try:
            registry.Api(store_url).artifact(f"proj/literal{i}").download(root)
        except Exception as e:  # noqa: BLE001
            problems[path[:40]] = f"{type(e).__name__}: {e}"
            continue
        expected = root / unicodedata.normalize("NFC", path)
        if not expected.is_file() or expected.read_bytes() != b"literal\n":
            problems[path[:40]] = "not at its literal path"
        elif not expected.resolve().is_relative_to(root.resolve()):
            problems[path[:40]] = "outside the root"
        new = files_under(watched) - before
        if not all(Path(p).is_relative_to(Path("a", "b", "root")) for p in new):
            problems[path[:40]] = f"wrote outside the root: {new}"
    assert problems == {}


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_nested_paths_land_at_their_own_path(store_url: str, tmp_path: Path) -> None:
    """Deep paths into a fresh root: each file at exactly its path, none merged with another."""
    files = {"dir/sub/c.bin": b"c", "a/x/f": b"1", "a/y/f": b"2", "a/f": b"3", "p/q/r/s/t.txt": b"deep"}
    log_files("nested", files)
    root = Path(registry.Api(store_url).artifact("proj/nested").download(tmp_path / "fresh" / "root"))
    on_disk = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert on_disk == files


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_longest_legal_name_downloads(store_url: str, tmp_path: Path) -> None:
    """validate_path accepts components up to 255 bytes, so such a file must also download."""
    name = "d/" + "x" * 255
    log_files("long", {name: b"long name\n"})
    root = Path(registry.Api(store_url).artifact("proj/long").download(tmp_path / "dl"))
    assert (root / name).read_bytes() == b"long name\n"


# -- addresses -------------------------------------------------------------------------------
UNSAFE_ADDRESSES = [
    "../x", "proj/../x", "/abs", "proj/a/b", "a\\b", "..", "proj/..", "proj/...", "name:../x", "name:v0/../x",
    "name@sha256:../x", "%2e%2e", "name#frag", "name:best#x", "name\0", "proj/name:", "na me", "",
]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
@pytest.mark.parametrize("address", UNSAFE_ADDRESSES)
def test_unsafe_addresses_are_refused(store_url: str, address: str) -> None:
    _tried()
    api = registry.Api(store_url)
    with pytest.raises(registry.InvalidNameError):
        api.artifact(address)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
@pytest.mark.parametrize("alias", ["../x", "a/b", "a\\b", "..", "", "a\nb"])
def test_unsafe_alias_names_are_refused(store_url: str, alias: str) -> None:
    _tried()
    log_files("data", {"a": b"1"})
    with pytest.raises(registry.InvalidNameError):
        registry.Api(store_url).set_alias("proj/data:v0", alias)
    listed = [info.key for info in open_backend(store_url).list(keys.aliases_prefix("proj", "data"))]
    assert listed == [keys.alias("proj", "data", "latest")]


# -- the download root -----------------------------------------------------------------------
@pytest.fixture
def logged(store_url: str):
    return log_files("data", {"sub/file.txt": b"inside\n", "sub/deep/x.txt": b"deep\n", "top.txt": b"top\n"})


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_download_root_with_symlinked_directory_is_refused(logged, store_url: str, tmp_path: Path) -> None:
    _tried()
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "dl"
    root.mkdir()
    (root / "sub").symlink_to("../outside", target_is_directory=True)
    art = registry.Api(store_url).artifact("proj/data")
    with pytest.raises(registry.InvalidNameError, match="symlink"):
        art.download(root)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["sub"]  # nothing placed, not even top.txt
    with pytest.raises(registry.InvalidNameError, match="symlink"):
        art.get_entry("sub/deep/x.txt").download(root)
    with pytest.raises(registry.InvalidNameError, match="symlink"):
        art.verify(root)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_symlink_at_a_file_position_is_replaced_not_written_through(logged, store_url: str, tmp_path: Path) -> None:
    _tried()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("original")
    root = tmp_path / "dl"
    root.mkdir()
    (root / "top.txt").symlink_to(outside / "target.txt")
    registry.Api(store_url).artifact("proj/data").download(root)
    assert (outside / "target.txt").read_text() == "original"
    assert not (root / "top.txt").is_symlink() and (root / "top.txt").read_bytes() == b"top\n"


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_dangling_symlink_root_is_refused(logged, store_url: str, tmp_path: Path) -> None:
    _tried()
    root = tmp_path / "dl"
    root.symlink_to(tmp_path / "nowhere")
    with pytest.raises(registry.InvalidNameError):
        registry.Api(store_url).artifact("proj/data").download(root)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_download_root_that_is_a_file_fails_with_a_typed_error(logged, store_url: str, tmp_path: Path) -> None:
    _tried()
    root = tmp_path / "dl"
    root.write_text("i am a file")
    with pytest.raises(registry.RegistryError):
        registry.Api(store_url).artifact("proj/data").download(root)
    assert root.read_text() == "i am a file"


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_file_where_a_directory_is_needed_is_refused(logged, store_url: str, tmp_path: Path) -> None:
    _tried()
    root = tmp_path / "dl"
    root.mkdir()
    (root / "sub").write_text("a file, not a directory")
    with pytest.raises(registry.InvalidNameError):
        registry.Api(store_url).artifact("proj/data").download(root)
    assert (root / "sub").read_text() == "a file, not a directory"


