"""S3 faults, injected with botocore event hooks: retried through, or a clean typed failure.

``FaultInjector`` hooks ``before-send`` on the store's own boto3 client, first and last:

* ``500`` / ``503`` -- a fake ``InternalError`` / ``SlowDown`` response; the server never sees
  the request (moto, which executes requests in its own ``before-send`` hook, is told to skip it).
* ``reset`` / ``timeout`` -- ``ConnectionClosedError`` / ``ReadTimeoutError`` raised before
  sending: the server never sees the request either.
* ``lost`` -- for PUT and DELETE only: the request is executed on the server (by moto's hook,
  or sent for real to SeaweedFS), then ``ReadTimeoutError`` is raised, so the client never
  learns that it succeeded.

botocore retries all of these (standard mode, 8 attempts); the backoff is shortened to keep
the tests fast (except once a restarted server is back, where the real one applies). A lost response to the write-if-absent of a version record makes the retry
get 412: the registry must read the record back and recognise its own commit id.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

import registry
from helpers import log_files, print_past_capture
from registry.store import open_store
from servers import SeaweedServer
from stored_bytes import StoredFile

S3_BACKENDS = ["moto", "seaweed"]
TOTALS: Counter = Counter()

ERROR_BODIES = {
    500: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>",
    503: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
}


class FakeRaw:
    """Just enough of a urllib3 response for botocore: ``stream()`` and ``read()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._pos = 0

    def stream(self, *args, **kwargs):
        yield self.read()

    def read(self, amt=None, *args, **kwargs) -> bytes:
        end = len(self._body) if amt is None else min(len(self._body), self._pos + amt)
        chunk, self._pos = self._body[self._pos:end], end
        return chunk


def fake_response(request, status: int, body: bytes = b"", headers: dict | None = None) -> AWSResponse:
    return AWSResponse(request.url, status, {"Content-Type": "application/xml", **(headers or {})}, FakeRaw(body))


@pytest.fixture(scope="module", autouse=True)
def report_fault_total(request: pytest.FixtureRequest):
    yield
    print_past_capture(request, f"[test_faults] faults injected in this module: {sum(TOTALS.values())} {dict(TOTALS)}")


def _real_delay_amount():
    import botocore.retries.standard as standard

    return standard.ExponentialBackoff.delay_amount


REAL_DELAY_AMOUNT = _real_delay_amount()


@pytest.fixture(autouse=True)
def botocore_engine(isolated_machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """These faults are injected through botocore's hooks: the botocore engine, on SeaweedFS too
    (tests/test_faults_obstore.py covers the default engine through a proxy)."""
    monkeypatch.setenv("REGISTRY_S3_ENGINE", "botocore")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retries (count and conditions) but not its seconds of backoff."""
    import botocore.retries.standard as standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.005)


@pytest.fixture(autouse=True)
def moto_honours_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let an injected 500/503 stop moto from executing the request, as it stops a real server."""
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def call(self, event_name, request, **kwargs):
        if getattr(request, "_registry_test_skip", False):
            return None
        return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", call)


def header(request, name: str) -> str | None:
    value = request.headers.get(name)
    return value.decode() if isinstance(value, bytes) else value


def conditional(request) -> bool:
    return header(request, "If-None-Match") is not None or header(request, "If-Match") is not None


def on_moto(store_url: str) -> bool:
    import os

    return store_url.startswith("s3://") and not os.environ.get("AWS_ENDPOINT_URL")


class FaultInjector:
    """Inject faults into one boto3 client: at random (``rate`` of requests, seeded) or by rule."""

    KINDS = ("500", "503", "reset", "timeout", "lost")

    def __init__(self, client, *, moto: bool, rate: float = 0.0, seed: int = 0, kinds=KINDS, rule=None) -> None:
        self.client = client
        self.moto = moto
        self.rate = rate
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.rule = rule  # (request, op) -> kind | None, for targeted faults
        self.enabled = True
        self.counts: Counter = Counter()
        self.log: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        # moto's hook is registered on "before-send" too: ours run just before and just after it
        client.meta.events.register_first("before-send", self._before)
        client.meta.events.register("before-send", self._after)

    def close(self) -> None:
        self.enabled = False
        self.client.meta.events.unregister("before-send", self._before)
        self.client.meta.events.unregister("before-send", self._after)
        TOTALS.update(self.counts)

    def _choose(self, request, op: str) -> str | None:
        if not self.enabled:
            return None
        if self.rule is not None:
            return self.rule(request, op)
        with self._lock:
            if self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(self.kinds)
        if kind == "lost" and request.method not in ("PUT", "DELETE"):
            kind = "reset"
        return kind

    def _before(self, request, event_name: str, **kwargs):
        op = event_name.rsplit(".", 1)[-1]
        kind = self._choose(request, op)
        if kind is None:
            return None
        with self._lock:
            self.counts[kind] += 1
            self.log.append((kind, request.method, op))
        if kind in ("500", "503"):
            request._registry_test_skip = True
            return fake_response(request, int(kind), ERROR_BODIES[int(kind)])
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if kind == "lost":
            request._registry_test_lost = True  # executed (by moto's hook or by _after), then lost
            return None
        if kind.startswith("truncate:"):  # a 200 whose body stops short of its Content-Length
            body = kind.split(":", 1)[1].encode()
            request._registry_test_skip = True
            return fake_response(request, 200, body, {"Content-Length": str(len(body) + 10), "ETag": '"0"'})
        raise AssertionError(kind)

    def _after(self, request, **kwargs):
        request._registry_test_skip = False
        if not getattr(request, "_registry_test_lost", False):
            return None
        request._registry_test_lost = False
        if not self.moto:  # send it for real; moto's hook already executed it
            response = self.client._endpoint.http_session.send(request)
            # a conditional write retried after an earlier lost one finds its own object: 412
            assert response.status_code < 300 or (conditional(request) and response.status_code == 412), response.content
        raise ReadTimeoutError(endpoint_url=request.url)


def injector(store_url: str, **kwargs) -> FaultInjector:
    return FaultInjector(open_store(store_url).backend._inner.client, moto=on_moto(store_url), **kwargs)


def report(label: str, counts: Counter, capsys) -> None:
    with capsys.disabled():
        print(f"\n[test_faults] {label}: {sum(counts.values())} faults injected {dict(counts)}")


def contents(i: int) -> dict[str, bytes]:
    return {"shared.txt": b"in every version\n", f"part-{i % 3}.txt": f"rotating {i % 3}\n".encode(), "payload.txt": f"call {i}\n".encode()}


# -- random faults ---------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_random_faults_while_logging_and_downloading(store_url: str, tmp_path: Path, capsys) -> None:
    log_files("data", contents(0))  # the capability probe runs before faults start (see test_lost_response_during_the_probe)
    faults = injector(store_url, rate=0.2, seed=7)
    logged, failed_logs, failed_downloads = [], 0, 0
    try:
        for i in range(1, 13):
            try:
                art = log_files("data", contents(i))
                logged.append((i, art.version, art.commit_id, art.digest, art.created))
            except registry.RegistryError:
                failed_logs += 1
            root = tmp_path / f"dl-{i}"
            try:
                art = registry.Api(store_url).artifact("proj/data:latest")
                art.download(root)
                art.verify(root)
            except registry.RegistryError:
                failed_downloads += 1
                leftovers = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
                assert leftovers == [], f"a failed download left files behind: {leftovers}"
    finally:
        faults.close()
    report(f"random faults on {store_url.split('/')[2]} ({len(logged)} logs succeeded, {failed_logs} failed; "
           f"{12 - failed_downloads} downloads succeeded, {failed_downloads} failed)", faults.counts, capsys)
    assert sum(faults.counts.values()) >= 10  # the run was really exercised

    api = registry.Api(store_url)
    versions = api.artifact_versions("proj/data")
    numbers = [int(a.version[1:]) for a in versions]
    assert numbers == list(range(len(numbers)))  # dense, no hole, no duplicate number
    by_version = {a.version: a for a in versions}
    told = [v for _, v, _, _, _ in logged]
    assert len(told) == len(set(told)), f"two log calls were told the same version: {logged}"
    for i, version, commit_id, digest, created in logged:
        assert created, f"call {i} was told its contents were already the latest"
        assert by_version[version].commit_id == commit_id and by_version[version].digest == digest
    digests = [a.digest for a in versions]
    assert len(digests) == len(set(digests)), "a lost response created a duplicate version"
    assert len(versions) - 1 >= len(logged)  # v0 + every success (a failed call may still have committed)
    assert api.artifact("proj/data:latest").version == versions[-1].version
    expected = {tuple(sorted(contents(i).items())) for i in range(13)}
    for art in versions:  # every version complete, each holding exactly one call's contents
        root = Path(art.download(tmp_path / "final" / art.version))
        art.verify(root)
        assert tuple(sorted((f.path, (root / f.path).read_bytes()) for f in art.files())) in expected


# -- lost responses to the writes that matter ------------------------------------------------
def lose_first(predicate):
    """A rule losing the response of the first request matching ``predicate(request, op)``."""
    state = {"done": False}

    def rule(request, op):
        if not state["done"] and request.method == "PUT" and predicate(request, op):
            state["done"] = True
            return "lost"
        return None

    return rule


def is_version_record(request, op) -> bool:
    return "/versions/v" in request.url and header(request, "If-None-Match") == "*"


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_lost_response_to_the_version_record_write(store_url: str, capsys) -> None:
    log_files("data", contents(0))
    faults = injector(store_url, rule=lose_first(is_version_record))
    try:
        art = log_files("data", contents(1))
    finally:
        faults.close()
    report("lost version-record response", faults.counts, capsys)
    assert faults.counts["lost"] == 1
    assert (art.version, art.created) == ("v1", True)
    api = registry.Api(store_url)
    assert [a.version for a in api.artifact_versions("proj/data")] == ["v0", "v1"]
    assert api.artifact("proj/data:v1").commit_id == art.commit_id
    assert api.artifact("proj/data:latest").version == "v1"


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_lost_response_to_every_conditional_write(store_url: str, capsys) -> None:
    """Every write-if-absent and compare-and-swap of a log (index, record, latest, aliases) loses its first response."""
    log_files("data", contents(0), aliases=["best"])
    lost_keys: set[str] = set()

    def rule(request, op):
        if request.method == "PUT" and conditional(request) and request.url not in lost_keys:
            lost_keys.add(request.url)
            return "lost"
        return None

    faults = injector(store_url, rule=rule)
    try:
        art = log_files("data", contents(1), aliases=["best", "prod"])
    finally:
        faults.close()
    report("lost conditional-write responses", faults.counts, capsys)
    assert faults.counts["lost"] >= 4  # digest index, version record, latest, best, prod
    assert (art.version, art.created) == ("v1", True)
    api = registry.Api(store_url)
    assert [a.version for a in api.artifact_versions("proj/data")] == ["v0", "v1"]
    assert api.artifact("proj/data:v1").commit_id == art.commit_id
    for alias in ("latest", "best", "prod"):
        assert api.artifact(f"proj/data:{alias}").version == "v1"


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_lost_response_to_a_compare_and_swap_alias_move(store_url: str, capsys) -> None:
    """The mover whose write landed must be told it won, not that someone else moved the alias."""
    log_files("model", {"w": b"1"}, aliases=["best"])
    log_files("model", {"w": b"2"})
    api = registry.Api(store_url)
    api.store.check_writable()
    faults = injector(store_url, rule=lose_first(lambda request, op: "/aliases/best.json" in request.url))
    try:
        outcome = api.set_alias("proj/model:v1", "best", expected_version=0)
    except registry.ConflictError as e:
        outcome = e
    finally:
        faults.close()
    report("lost alias compare-and-swap response", faults.counts, capsys)
    assert faults.counts["lost"] == 1
    assert api.artifact("proj/model:best").version == "v1"  # our write happened...
    assert outcome is True, f"...but the mover was told {outcome!r}"


PROBE_STEPS = {"create": 1, "final-compare-and-swap": 4}  # the probe's conditional PUTs: create, re-create (412), bogus CAS (412), CAS


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
@pytest.mark.parametrize("step", list(PROBE_STEPS))
def test_lost_response_during_the_capability_probe(store_url: str, step: str, capsys) -> None:
    """The first write to a bucket runs the probe; losing one of its responses must not break logging."""
    seen = {"n": 0}

    def rule(request, op):
        if request.method == "PUT" and "/_probe/" in request.url and conditional(request):
            seen["n"] += 1
            if seen["n"] == PROBE_STEPS[step]:
                return "lost"
        return None

    faults = injector(store_url, rule=rule)
    try:
        art = log_files("data", contents(0))
    finally:
        faults.close()
    report(f"lost probe response ({step})", faults.counts, capsys)
    assert faults.counts["lost"] == 1
    assert art.version == "v0"
    assert list(open_store(store_url).backend.list("_probe/")) == []


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_truncated_blob_body_fails_cleanly_then_succeeds(store_url: str, tmp_path: Path, capsys) -> None:
    art = log_files("data", {"a.txt": b"alpha " * 100, "b.txt": b"bravo"})
    (holding_a,) = StoredFile.of(store_url, art, "a.txt").keys  # its blob, or the pack its chunk is in

    def rule(request, op):
        return "truncate:alpha alp" if request.method == "GET" and request.url.split("?")[0].endswith(holding_a) else None

    faults = injector(store_url, rule=rule)
    root = tmp_path / "dl"
    try:
        with pytest.raises(registry.RegistryError) as raised:
            registry.Api(store_url).artifact("proj/data:v0").download(root)
    finally:
        faults.close()
    report("truncated GET bodies", faults.counts, capsys)
    assert faults.counts and isinstance(raised.value, (registry.StorageError, registry.IntegrityError))
    assert not root.exists() or [p for p in root.rglob("*") if p.is_file()] == []
    got = registry.Api(store_url).artifact("proj/data:v0")
    got.verify(got.download(root))


# -- the server going away -------------------------------------------------------------------
@pytest.fixture
def own_seaweed(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A SeaweedFS server of this test's own (stopping the session one would disturb others)."""
    server = SeaweedServer(tmp_path_factory.mktemp("own-seaweed"))
    server.start()
    try:
        server.make_bucket("restart")
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        url = "s3://restart/store"
        monkeypatch.setenv("REGISTRY_URL", url)
        yield server, url
    finally:
        server.stop()


def wait_until_the_bucket_answers(server, bucket: str, timeout: float = 60) -> None:
    """A restarted SeaweedFS answers its gateway first and InternalError on a bucket's objects for a
    while; on a busy machine that outlasts botocore's retry quota, which the outage has used up."""
    client = server.client(retries={"max_attempts": 1})
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.put_object(Bucket=bucket, Key="ready-check", Body=b"1")
            client.delete_object(Bucket=bucket, Key="ready-check")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_seaweed_stopped_and_restarted_during_a_run(own_seaweed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the server is down every attempt fails (short backoff, to fail fast); once it is
    back, botocore's real backoff applies, as a server that has just restarted may answer 500
    for a moment."""
    import botocore.retries.standard as standard

    server, url = own_seaweed
    with registry.init(project="proj") as run:
        first = registry.Artifact("data", type="dataset")
        with first.new_file("a.txt") as f:
            f.write("before the outage\n")
        run.log_artifact(first)
        server.stop()
        second = registry.Artifact("data", type="dataset")
        with second.new_file("a.txt") as f:
            f.write("after the outage\n")
        started = time.monotonic()
        with pytest.raises(registry.StorageError, match=str(server.s3_port)):
            run.log_artifact(second)
        assert time.monotonic() - started < 30  # fails, does not hang
        with pytest.raises(registry.StorageError):
            registry.Api(url).artifact("proj/data:v0")  # reads too
        server.restart()
        wait_until_the_bucket_answers(server, "restart")
        monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", REAL_DELAY_AMOUNT)
        again = registry.Artifact("data", type="dataset")
        with again.new_file("a.txt") as f:
            f.write("after the outage\n")
        logged = run.log_artifact(again)  # the next call, on the same client and run, succeeds
    assert logged.version == "v1"
    api = registry.Api(url)
    assert [a.version for a in api.artifact_versions("proj/data")] == ["v0", "v1"]  # the failed attempt left no version
    for art in api.artifact_versions("proj/data"):
        art.verify(art.download(tmp_path / art.version))
    assert api.run(f"proj/{run.id}").state == "finished"




@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_lost_response_to_an_audit_entry_write_keeps_exactly_one_entry(store_url: str, capsys) -> None:
    """An audit entry whose write-if-absent response is lost is recognised on the retry (412, then
    its own bytes read back): one entry, and the alias move is reported as done."""
    log_files("model", {"w": b"1"})
    api = registry.Api(store_url)
    api.store.check_writable()
    faults = injector(store_url, rule=lose_first(lambda request, op: "/audit/" in request.url))
    try:
        assert api.set_alias("proj/model:v0", "best") is True
    finally:
        faults.close()
    report("lost audit-entry response", faults.counts, capsys)
    assert faults.counts["lost"] == 1
    assert [(e.action, e.alias, e.after) for e in api.audit_trail("proj/model")] == [("alias.set", "best", "v0")]
