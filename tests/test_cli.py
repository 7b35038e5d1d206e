"""The ``registry`` command, run in subprocesses against a real SeaweedFS server.

Each test gets its own store (``s3://<module bucket>/<unique prefix>``) and one or more
"machines": a HOME and a REGISTRY_CACHE_DIR of their own, sharing only the bucket.
"""
from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import shlex
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from backends import Backend, open_backend
from servers import SeaweedServer, pick_ports
from store_contents import content_keys, holdings

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "registry.cli"]


@dataclass
class Machine:
    """One computer: its own HOME, cache and working directory; the store is shared."""

    root: Path
    env: dict[str, str]
    cwd: Path = field(init=False)

    def __post_init__(self) -> None:
        self.cwd = self.root / "work"
        self.cwd.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, code: int = 0, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
        proc = subprocess.run([*CLI, *args], cwd=self.cwd, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=120, **kwargs)
        assert proc.returncode == code, (
            f"registry {shlex.join(args)} exited {proc.returncode}, expected {code}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        return proc

    def json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.run("--json", *args, **kwargs).stdout)

    def run_many(self, *calls: tuple) -> list[subprocess.CompletedProcess]:
        """Independent invocations ``(args..., exit code)``, run concurrently to save time."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda call: self.run(*call[:-1], code=call[-1]), calls))

    @contextmanager
    def library(self) -> Iterator[None]:
        """This machine's environment in this process, to set up a store through the library."""
        with pytest.MonkeyPatch.context() as mp:
            for key in [k for k in os.environ if k.startswith(("REGISTRY_", "AWS_"))]:
                mp.delenv(key)
            for key, value in self.env.items():
                if key.startswith(("REGISTRY_", "AWS_")):
                    mp.setenv(key, value)
            yield

    def log(self, files: dict[str, str | bytes], address: str, type: str, aliases: tuple[str, ...] = (),
            job_type: str = "setup", **fields: Any) -> str:
        """Log ``files`` as a new version through the library (faster than a subprocess)."""
        import registry

        project, name = address.split("/")
        with self.library(), registry.init(project=project, job_type=job_type) as run:
            artifact = registry.Artifact(name, type, **fields)
            for path, body in files.items():
                with artifact.new_file(path, mode="wb") as f:
                    f.write(body.encode() if isinstance(body, str) else body)
            run.log_artifact(artifact, aliases=list(aliases))
            return artifact.qualified_name

    def shell(self, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bucket(seaweed: SeaweedServer) -> str:
    return seaweed.make_bucket("cli-" + uuid.uuid4().hex[:12])


@pytest.fixture
def store_url(bucket: str, request: pytest.FixtureRequest) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40]
    return f"s3://{bucket}/{slug}-{uuid.uuid4().hex[:8]}"


def _base_env(seaweed: SeaweedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "AWS_", "XDG_"))}
    env.update(seaweed.env())
    env.pop("COLUMNS", None)
    return env


@pytest.fixture
def store_backend(seaweed: SeaweedServer, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The test's store as this process reads it (to look at or remove what it holds)."""
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    return open_backend(store_url)


@pytest.fixture
def machines(seaweed: SeaweedServer, store_url: str, tmp_path: Path):
    """``machines("a")`` -> a Machine with its own HOME and cache, on this test's store."""
    made: dict[str, Machine] = {}

    def make(name: str = "a", **extra: str) -> Machine:
        if name not in made:
            root = tmp_path / name
            env = _base_env(seaweed)
            env.update(HOME=str(root / "home"), REGISTRY_CACHE_DIR=str(root / "home" / ".cache" / "registry"),
                       REGISTRY_URL=store_url, **extra)
            made[name] = Machine(root, env)
        return made[name]

    return make


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body.encode() if isinstance(body, str) else body)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


DATA_V0 = {"train.csv": "a,b\n1,2\n", "test.csv": "a,b\n3,4\n", "images/cat.bin": b"\x00\x01cat" * 100}


# -- push, ls, show ---------------------------------------------------------------------------
def test_push_ls_show(machines) -> None:
    a = machines("a")
    data = write_tree(a.cwd / "data", DATA_V0)
    (a.cwd / "meta.json").write_text(json.dumps({"rows": 2, "source": {"url": "http://x", "year": 2024}}))

    out = a.run("push", "data", "vision/mnist", "--type", "dataset", "--alias", "best",
                "--description", "digits", "--metadata", "@meta.json").stdout
    assert "created vision/mnist:v0" in out and "best" in out

    again = a.json("push", "data", "vision/mnist", "--type", "dataset")
    assert again["created"] is False and again["address"] == "vision/mnist:v0"
    text = a.run("push", "data", "vision/mnist", "--type", "dataset").stdout
    assert "vision/mnist:v0 already holds these contents" in text

    (data / "test.csv").write_text("a,b\n5,6\n")
    v1 = a.json("push", "data", "vision/mnist:candidate", "--type", "dataset", "--metadata", '{"rows": 3}')
    assert v1["created"] is True and v1["version"] == "v1" and set(v1["aliases"]) == {"latest", "candidate"}
    assert a.run("-q", "push", "meta.json", "vision/config", "--type", "config").stdout.strip() == "vision/config:v0"

    projects, project_names, listing_json, listing, versions_json, versions_text, show_json, show_text = a.run_many(
        ("--json", "ls", 0),
        ("ls", 0),
        ("--json", "ls", "vision", 0),
        ("ls", "vision", 0),
        ("ls", "vision/mnist", "--json", 0),  # --json after the command works too
        ("ls", "vision/mnist", 0),
        ("--json", "show", "vision/mnist:best", 0),
        ("--project", "vision", "show", "mnist:best", "--files", "1", 0),
    )
    assert json.loads(projects.stdout) == [{"name": "vision"}]
    assert project_names.stdout.split() == ["vision"]
    artifacts = {c["name"]: c for c in json.loads(listing_json.stdout)}
    assert set(artifacts) == {"mnist", "config"}
    mnist = artifacts["mnist"]
    assert (mnist["type"], mnist["version_count"], mnist["latest"]["version"]) == ("dataset", 2, "v1")
    assert mnist["aliases"] == {"best": "v0", "latest": "v1", "candidate": "v1"}
    assert mnist["size"] == sum(len(b.encode() if isinstance(b, str) else b) for b in DATA_V0.values())
    assert re.search(r"mnist\s+dataset\s+v1\s+2\s+best:v0, candidate:v1", listing.stdout), listing.stdout

    versions = json.loads(versions_json.stdout)
    assert [v["version"] for v in versions] == ["v0", "v1"]
    assert versions[0]["aliases"] == ["best"] and versions[0]["file_count"] == 3
    assert versions[0]["created_by"].startswith("vision/")
    assert re.search(r"^v0\s+best\s+[0-9a-f]{12}\s+516 B\s+3\s", versions_text.stdout, re.M), versions_text.stdout

    shown = json.loads(show_json.stdout)
    assert shown["address"] == "vision/mnist:v0" and shown["description"] == "digits"
    assert shown["metadata"] == {"rows": 2, "source": {"url": "http://x", "year": 2024}}
    assert [f["path"] for f in shown["files"]] == ["images/cat.bin", "test.csv", "train.csv"]
    assert shown["files"][0]["size"] == 500 and not shown["files_truncated"]
    assert shown["logged_by"]["job_type"] == "push" and shown["logged_by"]["state"] == "finished"
    assert shown["logged_by"]["outputs"] == ["vision/mnist:v0"] and shown["used_by"] == []
    text = show_text.stdout
    assert "vision/mnist:v0 (dataset)" in text and "description: digits" in text
    assert "images/cat.bin" in text and "train.csv" not in text and "and 2 more" in text
    assert '"year": 2024' in text and "logged by:" in text and "push, finished" in text


def test_push_single_file_with_env_project(machines) -> None:
    a = machines("a", REGISTRY_PROJECT="deploy")
    (a.cwd / "model.pt").write_bytes(os.urandom(2048))
    pushed = a.json("push", "model.pt", "clf", "--type", "model", "--alias", "production", "--alias", "best")
    assert pushed["address"] == "deploy/clf:v0" and set(pushed["aliases"]) == {"latest", "production", "best"}
    pulled = a.json("pull", "clf:production", "-d", "out")
    assert pulled["placed"] == ["model.pt"]
    assert (a.cwd / "out" / "model.pt").read_bytes() == (a.cwd / "model.pt").read_bytes()


# -- pull across machines ---------------------------------------------------------------------
def test_second_machine_pull_and_repeat_pull_transfers_nothing(machines, store_backend: Backend) -> None:
    a, b = machines("a"), machines("b")
    write_tree(a.cwd / "model", {"weights.bin": os.urandom(300_000), "config.json": '{"layers": 3}', "tok/vocab.txt": "a\nb\n"})
    a.run("push", "model", "team/net", "--type", "model", "--alias", "best")
    assert a.env["HOME"] != b.env["HOME"] and a.env["REGISTRY_CACHE_DIR"] != b.env["REGISTRY_CACHE_DIR"]

    # Machine b pulls into the default directory and gets identical, verified files.
    first = b.run("pull", "team/net:best")
    directory = first.stdout.strip()
    assert directory == "artifacts/net:v0"
    assert tree(b.cwd / directory) == tree(a.cwd / "model")
    assert "3 placed" in first.stderr and "\r" not in first.stderr  # no progress bar off a terminal
    assert b.run("verify", "team/net:best", directory).stdout.startswith("ok: 3 file(s)")
    assert b.json("verify", "team/net")["ok"] is True  # b's cache holds every file too
    assert b.json("cache", "info")["entries"] >= 3

    # Remove every blob (and pack) from the store: a repeat pull must not need any of them.
    held = holdings(store_backend)
    assert {hashlib.sha256(body).hexdigest() for body in tree(a.cwd / "model").values()} <= held.keys()
    assert len(held) == 4  # three files and the file list
    for key in content_keys(store_backend):
        store_backend.delete(key)

    again = b.json("pull", "team/net:best")
    assert again["placed"] == [] and sorted(again["unchanged"]) == ["config.json", "tok/vocab.txt", "weights.bin"]
    assert again["fetched_files"] == 0 and again["fetched_bytes"] == 0
    elsewhere = b.json("pull", "team/net", "-d", str(b.root / "deploy"), "--path-prefix", "tok/")
    assert elsewhere["placed"] == ["tok/vocab.txt"] and elsewhere["fetched_files"] == 0
    assert tree(b.root / "deploy") == {"tok/vocab.txt": b"a\nb\n"}

    # A third machine, with an empty cache, cannot: the store really lost the blobs.
    c = machines("c")
    failed = c.run("pull", "team/net", code=1)
    assert failed.stderr.startswith("registry: error: blob") and failed.stderr.count("\n") == 1

    # A tampered download fails verification (exit 4) and a pull with --clean repairs it from the cache.
    target = b.cwd / directory / "config.json"
    target.unlink()
    target.write_text('{"layers": 4}')
    (b.cwd / directory / "stray.txt").write_text("x")
    bad = b.run("verify", "team/net:v0", directory, code=4)
    assert "config.json" in bad.stderr and bad.stderr.count("\n") == 1
    refused = b.run("pull", "team/net:v0", "--clean", code=3)  # a local edit is never overwritten silently
    assert "edited locally" in refused.stderr and "config.json" in refused.stderr and refused.stderr.count("\n") == 1
    assert target.read_text() == '{"layers": 4}' and (b.cwd / directory / "stray.txt").exists()
    repaired = b.json("pull", "team/net:v0", "--clean", "--force")
    assert repaired["placed"] == ["config.json"] and repaired["restored"] == ["config.json"]
    assert repaired["removed"] == ["stray.txt"]
    assert repaired["fetched_files"] == 0
    b.run("verify", "team/net:v0", directory)


def test_progress_bar_only_on_a_terminal(machines) -> None:
    a = machines("a")
    a.log({"x.bin": os.urandom(50_000)}, "p/blob", "data")
    plain = a.run("pull", "p/blob", "-d", "plain")
    assert "%|" not in plain.stderr and "\r" not in plain.stderr

    leader, follower = pty.openpty()  # stderr on a terminal (stdout still a pipe)
    try:
        proc = subprocess.run([*CLI, "pull", "p/blob", "-d", "tty"], cwd=a.cwd, env=a.env, stdout=subprocess.PIPE,
                              stderr=follower, text=True, timeout=120)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0 and proc.stdout.strip() == "tty"
    assert b"%|" in b"".join(chunks)


# -- errors -----------------------------------------------------------------------------------
def test_exit_codes_and_one_line_errors(machines) -> None:
    a = machines("a")
    a.log({"f.txt": "hello"}, "proj/thing", "data", aliases=("prod",))
    (a.cwd / "d").mkdir()
    missing_bucket = f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}"
    errors = [
        (("pull", "proj/missing"), 1, "does not exist"),
        (("show", "proj/thing:nope"), 1, "no alias 'nope'"),
        (("show", "proj/thing:v7"), 1, "v7"),
        (("ls", "nosuchproject"), 1, "project 'nosuchproject' does not exist"),
        (("run", "proj/nosuchrun"), 1, "run proj/nosuchrun does not exist"),
        (("show", "proj/bad name"), 2, "invalid artifact name"),
        (("pull", "a/b/c"), 2, "one '/' at most"),
        (("--project", "bad/project", "show", "thing"), 2, "invalid project"),
        (("alias", "set", "proj/thing", "latest"), 2, "kept by the registry"),
        (("alias", "set", "proj/thing", "prod", "--expect", "v3"), 3, "now points to v0, not v3"),
        (("--url", missing_bucket, "ls"), 5, "does not exist at http://127.0.0.1:"),
        (("--url", "ftp://example.com/x", "ls"), 5, "unsupported scheme"),
    ]
    results = a.run_many(*[(*args, code) for args, code, _ in errors])
    for (args, _, text), proc in zip(errors, results):
        assert proc.stderr.startswith("registry: error: ") and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert text in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == "", (args, proc.stderr)
    assert "create it, or check REGISTRY_URL / AWS_ENDPOINT_URL" in results[10].stderr

    # Usage errors are click's (exit 2) and never reach the store: checked in-process, which is quicker.
    from click.testing import CliRunner

    from registry.cli import cli

    d = str(a.cwd / "d")
    usage = {
        ("push", d, "proj/thing"): "Missing option '--type'",
        ("ls", "--no-such-option"): "No such option",
        ("gc", "--grace", "soon"): "invalid duration 'soon'",
        ("cache", "clean", "--max-size", "lots"): "invalid size 'lots'",
        ("push", d, "proj/thing", "--type", "data", "--metadata", "[1, 2]"): "must be a JSON object",
        ("lineage", "proj/thing", "--format", "png"): "'png' is not one of",
    }
    for args, text in usage.items():
        result = CliRunner().invoke(cli, list(args), prog_name="registry", env=a.env)
        assert result.exit_code == 2 and text in result.output, (args, result.output)

    denied = a.run("ls", code=5, env={"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert "refused" in denied.stderr and denied.stderr.count("\n") == 1
    debug = a.run("--debug", "pull", "proj/missing", code=1)
    assert "Traceback" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("registry: error: artifact proj/missing does not exist")

    # --url overrides REGISTRY_URL.
    broken = {"REGISTRY_URL": missing_bucket + "/p"}
    a.run("ls", code=5, env=broken)
    assert a.run("--url", a.env["REGISTRY_URL"], "ls", env=broken).stdout.split() == ["proj"]


# -- the --json pipeline ----------------------------------------------------------------------
def test_shell_pipeline_over_json(machines) -> None:
    a = machines("a")
    for name, kind in (("alpha", "dataset"), ("beta", "model"), ("gamma", "model")):
        a.log({f"{name}.txt": name * 10}, f"zoo/{name}", kind)
    cli, python = shlex.join(CLI), shlex.quote(sys.executable)
    script = (
        f"{cli} --json ls zoo"
        f" | {python} -c 'import json,sys; [print(c[\"project\"] + \"/\" + c[\"name\"]) for c in json.load(sys.stdin) if c[\"type\"] == \"model\"]'"
        f" | while read -r addr; do {cli} -q pull \"$addr\" -d \"out/${{addr#zoo/}}\"; done"
    )
    proc = a.shell(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["out/beta", "out/gamma"] and proc.stderr == ""
    assert tree(a.cwd / "out") == {"beta/beta.txt": b"beta" * 10, "gamma/gamma.txt": b"gamma" * 10}

    size = a.shell(f"{cli} --json show zoo/alpha | {python} -c 'import json,sys; print(json.load(sys.stdin)[\"size\"])'")
    assert size.returncode == 0 and size.stdout.strip() == "50"


# -- aliases ----------------------------------------------------------------------------------
def test_alias_set_and_rm(machines) -> None:
    a = machines("a")
    a.log({"w.txt": "one"}, "ml/model", "model")
    a.log({"w.txt": "two"}, "ml/model", "model")

    assert a.run("alias", "set", "ml/model:v0", "production").stdout.strip() == "ml/model:production -> v0"
    assert a.json("show", "ml/model:production")["version"] == "v0"
    moved = a.json("alias", "set", "ml/model", "production", "--expect", "v0")
    assert moved == {"address": "ml/model:v1", "alias": "production", "version": "v1"}
    assert a.json("ls", "ml")[0]["aliases"] == {"latest": "v1", "production": "v1"}

    assert a.run("alias", "rm", "ml/model", "production").stdout.strip() == "removed alias production from ml/model"
    results = a.run_many(
        ("show", "ml/model:production", 1),
        ("alias", "rm", "ml/model", "production", 1),
        ("alias", "rm", "ml/model:v1", "production", 2),
        ("alias", "rm", "ml/model", "latest", 2),
    )
    assert "has no alias 'production'" in results[1].stderr


# -- runs, lineage, diff ----------------------------------------------------------------------
def _train(machine: Machine, project: str) -> str:
    """A training run through the library: uses the dataset, logs a model."""
    import registry

    with machine.library(), registry.init(project=project, job_type="train", config={"epochs": 3, "lr": 0.01},
                                          name="train-1") as run:
        run.use_artifact("mnist:latest", type="dataset")
        run.log({"loss": 0.5})
        run.log({"loss": 0.25})
        model = registry.Artifact("net", type="model", metadata={"accuracy": 0.9})
        with model.new_file("weights.bin", mode="wb") as f:
            f.write(b"weights")
        run.log_artifact(model, aliases=["best"])
        return run.id


def test_runs_run_and_lineage(machines) -> None:
    a = machines("a")
    write_tree(a.cwd / "data", {"train.csv": "1,2\n"})
    a.run("push", "data", "lab/mnist", "--type", "dataset")
    run_id = _train(a, "lab")

    runs = a.json("runs", "lab")
    assert [r["job_type"] for r in runs] == ["train", "push"]  # newest first
    assert runs[0]["inputs"] == ["lab/mnist:v0"] and runs[0]["outputs"] == ["lab/net:v0"]
    assert runs[1]["outputs"] == ["lab/mnist:v0"] and runs[1]["state"] == "finished"
    listing, by_name, shown, upstream, downstream, grouped, dot = a.run_many(
        ("runs", "lab", 0),
        ("run", "lab/train-1", 0),  # by name too
        ("--json", "show", "lab/mnist", 0),
        ("lineage", "lab/net:best", "--upstream", "--explode", 0),
        ("--json", "lineage", "lab/mnist", "--downstream", "--explode", 0),
        ("lineage", "lab/net", "--format", "mermaid", 0),
        ("lineage", "lab/net", "--format", "dot", "--explode", 0),
    )
    assert re.search(rf"{run_id}\s+train-1\s+train\s+finished", listing.stdout), listing.stdout
    text = by_name.stdout
    assert f"lab/{run_id} (train-1)" in text and "epochs: 3" in text and "loss: 0.25" in text
    assert "lab/mnist:v0 (dataset)" in text and "lab/net:v0 (model)" in text
    assert [r["id"] for r in json.loads(shown.stdout)["used_by"]] == [run_id]

    detail = a.json("run", f"lab/{run_id}")
    assert detail["config"] == {"epochs": 3, "lr": 0.01} and detail["summary"] == {"loss": 0.25}
    assert detail["name"] == "train-1" and detail["inputs"] == ["lab/mnist:v0"] and detail["state"] == "finished"

    assert "dataset:mnist:v0 (artifact) --consumed by--> train:train-1 (run)" in upstream.stdout
    assert "train:train-1 (run) --produces--> model:net:v0 (artifact)" in upstream.stdout
    assert "push:" in upstream.stdout  # the CLI push that logged the dataset
    graph = json.loads(downstream.stdout)
    assert {n["ref"] for n in graph["nodes"]} == {"lab/mnist:v0", f"lab/{run_id}", "lab/net:v0"}
    assert {"source": f"run:lab/{run_id}", "target": "artifact:lab/net:v0", "relation": "produces"} in graph["edges"]
    assert grouped.stdout.startswith("graph LR") and '["dataset"]' in grouped.stdout and '(["train"])' in grouped.stdout
    assert dot.stdout.startswith("digraph lineage {") and '"artifact:lab/net:v0"' in dot.stdout


def test_diff(machines) -> None:
    a = machines("a")
    a.log({"keep.txt": "same", "change.txt": "old", "gone.txt": "bye", "move.txt": "moving"}, "p/ds", "dataset",
          metadata={"rows": 10, "opts": {"seed": 1, "shuffle": True}})
    a.log({"keep.txt": "same", "change.txt": "newer", "moved.txt": "moving", "new.txt": "hello"}, "p/ds", "dataset",
          metadata={"rows": 12, "opts": {"seed": 1}, "split": "train"}, description="v2")

    as_json, text, same = a.run_many(
        ("--json", "diff", "p/ds:v0", "p/ds:v1", 0),
        ("diff", "p/ds:v0", "p/ds:latest", 0),
        ("diff", "p/ds:v1", "p/ds", 0),
    )
    result = json.loads(as_json.stdout)
    files = result["files"]
    assert [f["path"] for f in files["added"]] == ["new.txt"]
    assert [f["path"] for f in files["removed"]] == ["gone.txt"]
    assert [(f["path"], f["old_size"], f["new_size"]) for f in files["changed"]] == [("change.txt", 3, 5)]
    assert [(r["old_path"], r["new_path"]) for r in files["renamed"]] == [("move.txt", "moved.txt")]
    assert files["unchanged"] == 1
    assert result["metadata"] == {"added": {"split": "train"}, "removed": {"opts.shuffle": True},
                                  "changed": {"rows": {"old": 10, "new": 12}}}
    assert result["description"] == {"old": None, "new": "v2"} and result["identical"] is False

    for line in ("--- p/ds:v0", "+++ p/ds:v1", "+ new.txt (5 B)", "- gone.txt (3 B)", "~ change.txt (3 B -> 5 B)",
                 "> move.txt -> moved.txt", "~ rows: 10 -> 12", "+ split: \"train\"", "- opts.shuffle: true"):
        assert line in text.stdout, text.stdout
    assert same.stdout.strip().endswith("no differences")


# -- cache, gc, ui ----------------------------------------------------------------------------
def test_cache_info_and_clean(machines) -> None:
    a, b = machines("a"), machines("b", REGISTRY_CACHE_MAX="1MB")
    a.log({"one.bin": os.urandom(10_000), "two.bin": os.urandom(20_000)}, "c/blobs", "data")
    assert b.json("pull", "c/blobs", "-d", "x")["fetched_files"] == 2

    info = b.json("cache", "info")
    assert info["directory"] == b.env["REGISTRY_CACHE_DIR"] and info["max_size"] == 1_000_000
    assert info["entries"] == 3 and info["size"] > 30_000 and info["store_is_cache"] is False
    assert "limit:     1.0 MB" in b.run("cache", "info").stdout

    assert b.json("cache", "clean")["freed_files"] == 0  # already under REGISTRY_CACHE_MAX
    cleaned = b.json("cache", "clean", "--max-size", "15KB")
    assert cleaned["freed_files"] >= 1 and cleaned["max_size"] == 15_000
    assert b.json("cache", "info")["size"] <= 15_000
    assert "freed" in b.run("cache", "clean", "--max-size", "0").stdout
    assert b.json("cache", "info")["entries"] == 0
    again = b.json("pull", "c/blobs", "-d", "y")  # the bytes are still in ./x on this machine
    assert again["fetched_files"] == 0 and again["local_bytes"] == 30_000
    for name in ("one.bin", "two.bin"):
        (b.cwd / "x" / name).unlink()
        (b.cwd / "y" / name).unlink()
    assert b.json("pull", "c/blobs", "-d", "z")["fetched_files"] == 2  # fetched again


def test_gc(machines, seaweed: SeaweedServer, store_url: str) -> None:
    a = machines("a")
    a.log({"keep.txt": "kept"}, "g/ds", "data")
    stray = b"nobody references me" * 10
    sha = hashlib.sha256(stray).hexdigest()
    bucket, prefix = store_url.removeprefix("s3://").split("/", 1)
    seaweed.client().put_object(Bucket=bucket, Key=f"{prefix}/blobs/sha256/{sha[:2]}/{sha[2:]}", Body=stray)

    young = a.json("gc")  # default grace: 24 h
    assert young["deleted"] == [] and young["kept_young"] == 1 and young["referenced"] == 2
    dry = a.json("gc", "--grace", "0s", "--dry-run")
    assert dry["dry_run"] is True and dry["deleted"] == [f"blobs/sha256/{sha[:2]}/{sha[2:]}"] and dry["freed_bytes"] == len(stray)
    assert "would delete 1 blob(s), 200 B" in a.run("gc", "--grace", "0s", "--dry-run").stdout
    assert "deleted 1 blob(s), 200 B" in a.run("gc", "--grace", "0s").stdout

    # Blobs of a writer that died after uploading stay protected by its in-flight marker.
    write_tree(a.cwd / "e", {"late.txt": "uploaded, never committed"})
    a.run("push", "e", "g/other", "--type", "data", code=77, env={"REGISTRY_TEST_CRASH_AT": "after-blobs"})
    crashed = a.json("gc", "--grace", "0s")
    assert crashed["deleted"] == [] and crashed["kept_in_flight"] == 1 and crashed["referenced"] == 2
    assert machines("b").json("pull", "g/ds", "-d", "out")["placed"] == ["keep.txt"]


def test_ui_serves(machines) -> None:
    a = machines("a")
    a.log({"f.txt": "x"}, "webp/thing", "data")
    port = pick_ports(1, grpc=False)[0]
    proc = subprocess.Popen([*CLI, "ui", "--port", str(port)], cwd=a.cwd, env=a.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
        assert match, banner
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/", timeout=10) as response:
                    assert response.status == 200 and "webp" in response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_help_version_and_docs_are_current(machines) -> None:
    a = machines("a")
    version, help_run, empty = a.run_many(("--version", 0), ("-h", 0), ("--json", "ls", 0))
    assert version.stdout.strip() == "registry 0.1.0"
    for command in ("ls", "show", "pull", "push", "alias", "runs", "run", "lineage", "diff", "verify", "cache", "gc", "ui"):
        assert re.search(rf"^  {command}\s", help_run.stdout, re.M), command
    assert "Exit codes" in help_run.stdout
    assert empty.stdout.strip() == "[]"  # an empty store
    check = subprocess.run([sys.executable, str(REPO / "docs" / "gen_cli_reference.py"), "--check"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_no_op_command_loads_no_command_module_and_no_model() -> None:
    """`registry --version` imports no command's module and not pydantic (the library's models):
    each command's module loads when the command is named."""
    code = ("import sys\nfrom registry.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'registry.cli.transfer', "
            "'registry.cli.artifacts', 'registry.api'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    from registry import __version__

    assert proc.stdout.strip().splitlines() == [f"registry {__version__}", "[]"]


def test_start_up_leaves_optional_modules_unimported() -> None:
    """`registry -h` does not pay for what only some commands use: Flask (ui) and tqdm (progress bars)."""
    code = ("import sys, registry.cli; "
            "print(sorted(m for m in ('flask', 'registry.ui', 'tqdm') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
