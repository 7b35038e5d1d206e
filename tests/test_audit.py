"""The audit trail: each alias move, link, unlink, delete, retention action and edit appends one
entry (who, when, what, from -> to) that no concurrent writer can lose or overwrite."""
from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import log_files
from store_fixtures import subprocess_env

import registry
from registry import audit_log, identity
from registry.cli import cli
from registry.records import Actor, AuditEntry, now
from registry.retention import apply, set_policy
from registry.ui import create_app


def _trail(store_url: str, address: str) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return [(e.action, e.subject, e.alias, e.before, e.after)
            for e in registry.Api(store_url).audit_trail(address)]


def test_every_action_appends_one_entry_with_who_what_and_from_to(store_url: str) -> None:
    log_files("model", {"w": b"0"}, type="model", aliases=["best"])
    log_files("model", {"w": b"1"}, type="model")
    log_files("model", {"w": b"2"}, type="model")
    api = registry.Api(store_url)
    api.set_alias("proj/model:v1", "best")
    api.set_alias("proj/model:v1", "best")  # already there: no move, no entry
    with pytest.raises(registry.ConflictError):
        api.set_alias("proj/model:v2", "best", expected_version=0)  # a lost compare-and-swap: no entry
    api.remove_alias("proj/model", "best")
    link = api.artifact("proj/model:v2").link("registry/mnist", aliases=["production"])
    link.unlink()
    v0 = api.artifact("proj/model:v0")
    v0.tags = ["old"]
    v0.save()
    v0.delete()
    assert _trail(store_url, "proj/model") == [
        ("alias.set", "proj/model:v0", "best", None, "v0"),
        ("alias.set", "proj/model:v1", "best", "v0", "v1"),
        ("alias.remove", "proj/model:v1", "best", "v1", None),
        ("link", "registry/mnist:v0", None, "proj/model:v2", "registry/mnist:v0"),
        ("alias.set", "registry/mnist:v0", "production", None, "v0"),
        ("alias.remove", "registry/mnist:v0", "production", "v0", None),
        ("unlink", "registry/mnist:v0", None, "proj/model:v2", None),
        ("tags.set", "proj/model:v0", None, None, "old"),
        ("delete", "proj/model:v0", None, "proj/model:v0", None),
    ]
    assert [a for a, *_ in _trail(store_url, "registry/mnist")] == ["link", "alias.set", "alias.remove", "unlink"]
    entries = api.audit_trail("proj/model")
    assert {(e.actor.host, e.actor.user) for e in entries} == {(socket.gethostname(), getpass.getuser())}
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_retention_and_ttl_deletions_are_logged(store_url: str) -> None:
    for n in range(3):
        log_files("data", {"a": str(n).encode()})
    api = registry.Api(store_url)
    set_policy(api.store, "proj", "data", keep_last=2)
    v2 = api.artifact("proj/data:v2")
    v2.ttl = timedelta(days=1)
    v2.save()
    apply(api.store)
    trail = _trail(store_url, "proj/data")
    assert trail[0][:2] == ("retention.set", "proj/data") and trail[0][4] == "keep last 2, keep aliased"
    assert trail[1] == ("ttl.set", "proj/data:v2", None, None, "86400s")
    assert trail[2] == ("retention.delete", "proj/data:v0", None, "proj/data:v0", None)


def test_concurrent_appends_lose_nothing(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"a": b"0"})
    api = registry.Api(store_url)
    actor = Actor(host="h", user="u")

    def append(i: int) -> str:
        entry = AuditEntry(at=now(), actor=actor, action="test", subject=f"thread-{i}")
        return audit_log.append(api.store.backend, "proj", "data", entry)

    with ThreadPoolExecutor(max_workers=16) as pool:
        written = list(pool.map(append, range(64)))
    expected = {f"thread-{i}" for i in range(64)}
    if not store_url.startswith("s3://moto"):  # moto lives in this process only
        script = (
            "import sys, registry\n"
            "from registry import audit_log\n"
            "from registry.records import Actor, AuditEntry, now\n"
            "backend = registry.Api().store.backend\n"
            "for i in range(20):\n"
            "    audit_log.append(backend, 'proj', 'data', AuditEntry(at=now(), actor=Actor(host='h', user='u'),\n"
            "                     action='test', subject=f'proc-{sys.argv[1]}-{i}'))\n"
        )
        procs = [subprocess.Popen([sys.executable, "-c", script, str(p)],
                                  env=subprocess_env(store_url, tmp_path / f"cache{p}"), stderr=subprocess.PIPE)
                 for p in range(4)]
        for proc in procs:
            assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        expected |= {f"proc-{p}-{i}" for p in range(4) for i in range(20)}
    subjects = [e.subject for e in api.audit_trail("proj/data")]
    assert len(set(written)) == 64
    assert sorted(subjects) == sorted(expected)  # every entry, each once


def test_an_entry_is_never_overwritten_when_ids_collide(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {"a": b"0"})
    backend = registry.Api(store_url).store.backend
    ids = iter(["same", "same", "other"])
    monkeypatch.setattr(audit_log, "new_entry_id", lambda at: next(ids))
    first = AuditEntry(at=now(), actor=Actor(host="h", user="u"), action="first", subject="s")
    second = first.model_copy(update={"action": "second"})
    assert audit_log.append(backend, "proj", "data", first).endswith("/same.json")
    assert audit_log.append(backend, "proj", "data", second).endswith("/other.json")
    assert sorted(e.action for e in registry.Api(store_url).audit_trail("proj/data")) == ["first", "second"]


def test_the_store_identity_is_recorded_where_it_can_tell_and_never_fails(store_url: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    identity.caller_identity.cache_clear()
    log_files("data", {"a": b"0"}, aliases=["best"])
    who = registry.Api(store_url).audit_trail("proj/data")[0].actor.identity
    if store_url.startswith("s3://moto"):
        assert who is not None and who.startswith("arn:aws:")  # moto answers STS GetCallerIdentity
    elif not store_url.startswith("s3://"):
        assert who is None
    identity.caller_identity.cache_clear()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # nothing listens: STS cannot answer
    assert identity.caller_identity("s3://any-bucket") is None
    identity.caller_identity.cache_clear()


def test_history_in_the_cli_and_the_ui(store_url: str) -> None:
    model = log_files("convnet", {"w": b"w"}, type="model")
    model.link("registry/mnist", aliases=["production"])
    runner = CliRunner()
    result = runner.invoke(cli, ["history", "registry/mnist", "--json"], env={"REGISTRY_URL": store_url})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [(e["action"], e["alias"], e["before"], e["after"]) for e in shown] == [
        ("link", None, "proj/convnet:v0", "registry/mnist:v0"), ("alias.set", "production", None, "v0")]
    assert shown[0]["user"] == getpass.getuser() and shown[0]["host"] == socket.gethostname()
    newest = runner.invoke(cli, ["history", "registry/mnist", "--limit", "1", "--json"], env={"REGISTRY_URL": store_url})
    assert [e["action"] for e in json.loads(newest.stdout)] == ["alias.set"]
    text = runner.invoke(cli, ["history", "registry/mnist:production"], env={"REGISTRY_URL": store_url}).stdout
    assert "alias.set" in text and "- -> v0" in text
    missing = runner.invoke(cli, ["history", "proj/nothing"], env={"REGISTRY_URL": store_url})
    assert missing.exit_code == 1 and "does not exist" in missing.output
    page = create_app(store_url).test_client().get("/projects/registry/artifacts/mnist/v0?tab=history")
    assert page.status_code == 200
    assert b"alias.set" in page.data and b"proj/convnet:v0 \xe2\x86\x92 registry/mnist:v0" in page.data


def test_an_identity_that_echoes_the_access_key_is_never_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    class EchoingSts:
        def get_caller_identity(self) -> dict:
            return {"Arn": "arn:echo:::user/AKIAEXAMPLEKEY"}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setattr(boto3.Session, "client", lambda self, *a, **k: EchoingSts())
    identity.caller_identity.cache_clear()
    assert identity.caller_identity("s3://bucket") is None
    identity.caller_identity.cache_clear()
