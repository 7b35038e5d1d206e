"""A hypothesis state machine: random sequences of operations against a model of what must hold.

The model is a list of versions (each a dict of path -> bytes) and a dict of aliases. Rules:
log (random small contents, sometimes identical to the latest), set an alias (plain, with
the right expected version, with a wrong one), remove an alias, delete a version (refused
while aliased, or with its aliases), download and verify any version or alias, leave an
unreferenced blob behind, gc with no grace (nothing in flight), and empty the download cache.
After every step, ``latest`` and the version count agree with the model; gc must delete exactly
the blobs no live version references; every download must equal the model.

Where new versions put their bytes in packs (format 2 on S3), the model also holds the packs,
each as the set of chunks in it: a new version's pack holds exactly those of its files' bytes
the store held nowhere (in a pack, or loose where the artifact had no version yet), and gc must delete exactly the packs none
of whose chunks a live version references (with their indexes); the store's packs must always
be the model's.
"""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import registry
from helpers import log_files
from store_contents import holdings, pack_contents
from registry import keys
from registry.gc import collect_garbage
from registry.store import open_store

PATHS = ["a.txt", "dir/b.txt", "dir/sub/c.bin", "Z.txt"]
ALIASES = ["best", "prod"]
SMALL = st.one_of(st.binary(max_size=12), st.sampled_from([b"", b"same", b"\x00\xff"]))
CONTENTS = st.dictionaries(st.sampled_from(PATHS), SMALL, min_size=1, max_size=3)
STEPS = {"steps": 0, "versions": 0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RegistryMachine(RuleBasedStateMachine):
    """One fresh store (and cache) per example."""

    new_store = None  # set by the test: () -> (url, cache dir)

    def __init__(self) -> None:
        super().__init__()
        self.url = type(self).new_store()
        self.api = registry.Api(self.url)
        self.store = open_store(self.url)
        self.versions: list[dict[str, bytes]] = []
        self.digests: dict[tuple, str] = {}
        self.aliases: dict[str, int] = {}
        self.deleted: set[int] = set()
        self.downloads = 0
        self.packs: set[frozenset[str]] = set()  # (format 2 on S3) each pack's chunks
        self.left_behind: set[str] = set()  # loose blobs nothing logged

    # -- helpers ---------------------------------------------------------------------------
    def live(self) -> list[int]:
        return [n for n in range(len(self.versions)) if n not in self.deleted]

    def referenced(self) -> set[str]:
        live = [self.versions[n] for n in self.live()]
        used = {sha(data) for files in live for data in files.values()}
        return used | {self.digests[tuple(sorted(files.items()))] for files in live}

    def held(self) -> set[str]:
        """What the store holds, by the model: loose blobs left behind, chunks in packs (and, in
        a store without packs, every file logged: it never needs to be told apart)."""
        return self.left_behind.union(*self.packs)

    def store_packs(self) -> dict[frozenset[str], str]:
        """The store's packs: their chunks -> their id (a pack is named by its bytes, so no two
        hold the same chunks)."""
        return {chunks: pack_id for pack_id, chunks in pack_contents(self.store.backend).items()}

    def address(self, target: int | str) -> str:
        return f"proj/data:v{target}" if isinstance(target, int) else f"proj/data:{target}"

    def expected_version(self, target: int | str) -> int:
        if isinstance(target, int):
            return target
        return self.live()[-1] if target == "latest" else self.aliases[target]

    # -- rules -----------------------------------------------------------------------------
    @rule(files=CONTENTS, aliases=st.lists(st.sampled_from(ALIASES), max_size=1, unique=True))
    def log(self, files: dict[str, bytes], aliases: list[str]) -> None:
        self._log(files, aliases)

    @precondition(lambda self: self.live())
    @rule()
    def log_same_as_latest(self) -> None:
        self._log(dict(self.versions[self.live()[-1]]), [])

    def _log(self, files: dict[str, bytes], aliases: list[str]) -> None:
        # the same contents as the highest version return it, unless it was deleted
        same = bool(self.versions) and files == self.versions[-1] and len(self.versions) - 1 not in self.deleted
        held = self.held()
        art = log_files("data", files, aliases=aliases)
        expected = len(self.versions) - 1 if same else len(self.versions)
        assert (art.version, art.created) == (f"v{expected}", not same)
        key = tuple(sorted(files.items()))
        if key in self.digests:
            assert art.digest == self.digests[key]  # equal contents, equal digest
        self.digests[key] = art.digest
        if not same:
            self.versions.append(dict(files))
            STEPS["versions"] += 1
            if self.store.writes_packs and self.live()[:-1]:
                # a writer whose artifact already has a (format-2) latest version looks for its
                # files in packs only: a loose blob left behind is not found, and is packed again
                held = set().union(*self.packs)
            new = {sha(data) for data in files.values()} - held
            if self.store.writes_packs and new:
                self.packs.add(frozenset(new))
        for alias in aliases:
            self.aliases[alias] = expected

    @precondition(lambda self: self.live())
    @rule(alias=st.sampled_from(ALIASES), data=st.data())
    def set_alias(self, alias: str, data) -> None:
        n = data.draw(st.sampled_from(self.live()), label="version")
        mode = data.draw(st.sampled_from(["plain", "expected", "wrong"]), label="mode")
        current = self.aliases.get(alias)
        if mode == "plain" or current is None:
            assert self.api.set_alias(self.address(n), alias) is True
        elif mode == "expected":
            assert self.api.set_alias(self.address(n), alias, expected_version=current) is True
        else:
            with pytest.raises(registry.ConflictError):
                self.api.set_alias(self.address(n), alias, expected_version=current + 1)
            return
        self.aliases[alias] = n

    @precondition(lambda self: self.aliases)
    @rule(data=st.data())
    def remove_alias(self, data) -> None:
        alias = data.draw(st.sampled_from(sorted(self.aliases)), label="alias")
        self.api.remove_alias("proj/data", alias)
        del self.aliases[alias]
        with pytest.raises(registry.NotFoundError):
            self.api.artifact(self.address(alias))

    @precondition(lambda self: self.live())
    @rule(data=st.data(), with_aliases=st.booleans())
    def delete(self, data, with_aliases: bool) -> None:
        n = data.draw(st.sampled_from(self.live()), label="version")
        aliased = sorted(a for a, v in self.aliases.items() if v == n)
        if aliased and not with_aliases:
            with pytest.raises(registry.ConflictError):
                self.api.artifact(self.address(n)).delete()
            return
        self.api.artifact(self.address(n)).delete(delete_aliases=with_aliases)
        self.deleted.add(n)
        for alias in aliased:
            del self.aliases[alias]
        with pytest.raises(registry.NotFoundError):
            self.api.artifact(self.address(n))

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def download_and_verify(self, data) -> None:
        targets: list[int | str] = self.live() + ["latest"] + sorted(self.aliases)
        target = data.draw(st.sampled_from(targets), label="target")
        number = self.expected_version(target)
        art = self.api.artifact(self.address(target))
        assert art.version == f"v{number}"
        assert art.digest == self.digests[tuple(sorted(self.versions[number].items()))]
        self.downloads += 1
        root = Path(art.download(Path(self.store.settings.cache_dir).parent / f"dl-{uuid.uuid4().hex[:8]}"))
        on_disk = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        assert on_disk == self.versions[number]
        art.verify(root)

    @rule(data=SMALL)
    def leave_a_blob_behind(self, data: bytes) -> None:
        """As a writer that crashed after uploading would."""
        self.store.blobs.put_bytes(data)
        self.left_behind.add(sha(data))

    @rule()
    def gc(self) -> None:
        present = {keys.sha_of_blob_key(i.key) for i in self.store.backend.list(keys.blob_prefix())}
        referenced = self.referenced()
        dead = {chunks for chunks in self.packs if not chunks & referenced}
        ids = self.store_packs()
        report = collect_garbage(self.store, grace_seconds=0)
        blobs = {k for k in report.deleted if k.startswith(keys.blob_prefix())}
        assert {keys.sha_of_blob_key(k) for k in blobs} == present - referenced
        assert set(report.deleted) - blobs == {key for chunks in dead for key in (keys.pack(ids[chunks]),
                                                                                keys.pack_index(ids[chunks]))}
        self.packs -= dead
        self.left_behind &= referenced

    @rule()
    def clean_cache(self) -> None:
        self.store.cache.clean(max_size=0)
        if not self.store.cache.is_store:  # (a 0-byte entry already fits in 0 bytes)
            assert sum(size for _, size, _ in self.store.cache.entries()) == 0

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def latest_and_count_agree(self) -> None:
        STEPS["steps"] += 1
        if not self.live():
            with pytest.raises(registry.NotFoundError):
                self.api.artifact("proj/data:latest")
            return
        assert self.api.artifact("proj/data:latest").version == f"v{self.live()[-1]}"
        assert set(self.store_packs()) == self.packs, "the store's packs are not the model's"
        held = set(holdings(self.store.backend))
        assert self.referenced() <= held, "a referenced blob (or chunk) is missing from the store"


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_registry_matches_its_model(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def new_store() -> str:
        tag = uuid.uuid4().hex[:10]
        url = str(tmp_path / f"store-{tag}") if not store_url.startswith("s3://") else f"{store_url.rsplit('/', 1)[0]}/{tag}"
        if not store_url.startswith("s3://"):
            Path(url).mkdir()  # an empty store (a missing one is an error when read)
        monkeypatch.setenv("REGISTRY_URL", url)
        monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / f"cache-{tag}"))
        return url

    RegistryMachine.new_store = staticmethod(new_store)
    before = dict(STEPS)
    run_state_machine_as_test(
        RegistryMachine,
        settings=settings(max_examples=15, stateful_step_count=15, deadline=None, database=None,
                          # no "explain" phase: it traces every line of botocore; moto is too slow to shrink on
                          # (minutes), so a failure there is reported unshrunk (local shrinks the same rules)
                          phases=[Phase.generate, Phase.target] + ([] if store_url.startswith("s3://") else [Phase.shrink]),
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )
    with capsys.disabled():
        print(f"\n[test_model_based] {'moto' if store_url.startswith('s3://') else 'local'}: "
              f"{STEPS['steps'] - before['steps']} steps, {STEPS['versions'] - before['versions']} versions logged")
