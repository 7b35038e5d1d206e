"""The W&B-style surface: runs, config, summary, history, artifacts, Api and lineage."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import registry
from helpers import log_files


def test_run_records_state_config_and_environment(api: registry.Api) -> None:
    with registry.init(project="proj", job_type="train", config={"lr": 0.1}, tags=["a"], notes="n") as run:
        assert registry.run is run
        registry.config.update({"epochs": 2})
        assert (registry.config.lr, registry.config["epochs"], dict(run.config)) == (0.1, 2, {"lr": 0.1, "epochs": 2})
        assert len(run.name.split("-")) == 3 and run.name.split("-")[2].isdigit()
    assert registry.run is None
    stored = api.run(f"proj/{run.id}")
    assert (stored.state, stored.job_type, stored.config, stored.tags, stored.notes) == ("finished", "train", {"lr": 0.1, "epochs": 2}, ["a"], "n")
    assert stored.record.host and stored.record.python and stored.ended_at >= stored.created_at
    assert api.run(f"proj/{run.name}").id == run.id  # by name too


def test_a_raising_block_marks_the_run_crashed(api: registry.Api) -> None:
    with pytest.raises(ZeroDivisionError):
        with registry.init(project="proj") as run:
            1 / 0
    stored = api.run(f"proj/{run.id}")
    assert stored.state == "crashed" and "ZeroDivisionError" in stored.error


def test_summary_and_history_turn_tensors_into_numbers(api: registry.Api) -> None:
    with registry.init(project="proj") as run:
        for step in range(3):
            registry.log({"loss": torch.tensor(1.0 / (step + 1)), "acc": np.float32(0.5)}, step=step * 10)
        run.summary.update({"final": torch.tensor(0.25), "count": np.int64(7)})
    stored = api.run(f"proj/{run.id}")
    assert stored.summary == {"loss": pytest.approx(1 / 3), "acc": 0.5, "final": 0.25, "count": 7}
    assert [row["_step"] for row in stored.history()] == [0, 10, 20]
    assert isinstance(stored.history()[0]["loss"], float)


def test_history_is_written_in_batches(store_url: str, api: registry.Api) -> None:
    from registry.store import open_store

    store = open_store(store_url)
    writes: list[str] = []
    real = store.backend._inner.write

    def counting(key, data, sha256=None):
        writes.append(key)
        return real(key, data, sha256)

    store.backend._inner.write = counting
    try:
        with registry.init(project="proj") as run:
            for step in range(300):
                registry.log({"x": step})
    finally:
        store.backend._inner.write = real
    assert sum("/history/" in k for k in writes) == 1
    assert len(api.run(f"proj/{run.id}").history()) == 300


def test_images_and_saved_files_live_in_the_store(api: registry.Api, tmp_path: Path) -> None:
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"weights")
    with registry.init(project="proj") as run:
        registry.log({"examples": [registry.Image(np.zeros((28, 28)), caption="<b>7</b>"), registry.Image(torch.rand(1, 28, 28))]})
        registry.save(str(weights))
    stored = api.run(f"proj/{run.id}")
    images = stored.history()[0]["examples"]
    assert [(i["width"], i["height"], i["caption"]) for i in images] == [(28, 28, "<b>7</b>"), (28, 28, None)]
    assert api.store.blobs.read(images[0]["sha256"]).startswith(b"\x89PNG")
    assert [(f.path, f.size) for f in stored.files()] == [("model.pth", 7)]


def test_artifact_building_rules(tmp_path: Path) -> None:
    art = registry.Artifact("data", type="dataset")
    (tmp_path / "x.txt").write_text("x")
    art.add_file(tmp_path / "x.txt")
    art.add_file(tmp_path / "x.txt")  # same contents twice: fine
    (tmp_path / "y.txt").write_text("y")
    with pytest.raises(registry.InvalidNameError, match="already added with different contents"):
        art.add_file(tmp_path / "y.txt", name="x.txt")
    art.remove("x.txt")
    with pytest.raises(registry.NotFoundError):
        art.remove("x.txt")
    with pytest.raises(registry.InvalidNameError, match=r"metadata\['bad'\]"):
        registry.Artifact("data", type="dataset", metadata={"bad": object()})
    with pytest.raises(registry.InvalidNameError, match="unsafe file path"):
        art.add_file(tmp_path / "y.txt", name="../y.txt")


def test_add_dir_and_nested_names(api: registry.Api, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    with registry.init(project="proj") as run:
        art = registry.Artifact("data", type="dataset", description="d")
        art.add_dir(tree, name="root")
        logged = run.log_artifact(art)
    assert [f.path for f in logged.files()] == ["root/a.txt", "root/sub/b.txt"]
    assert (logged.size, logged.file_count, logged.description) == (2, 2, "d")


def test_use_artifact_records_inputs_and_lineage(api: registry.Api) -> None:
    producer = log_files("data", {"a": b"1"}, job_type="load-data")
    with registry.init(project="proj", job_type="train") as run:
        used = run.use_artifact("data:latest")
        assert used.version == "v0" and used.aliases == ["latest"]
        with pytest.raises(registry.InvalidNameError):
            run.use_artifact("data:latest", type="model")
        model = registry.Artifact("model", type="model")
        with model.new_file("w.txt") as f:
            f.write("w")
        run.log_artifact(model)
    assert used.logged_by().job_type == "load-data"
    assert [r.id for r in used.used_by()] == [run.id]
    stored = api.run(f"proj/{run.id}")
    assert [a.qualified_name for a in stored.used_artifacts()] == ["proj/data:v0"]
    assert [a.qualified_name for a in stored.logged_artifacts()] == ["proj/model:v0"]
    assert producer.digest == used.digest

    graph = api.lineage("proj/model:latest")
    exploded = graph.to_text(explode=True)
    assert f"train:{run.name} (run) --produces--> model:model:v0" in exploded
    assert "dataset:data:v0 (artifact) --consumed by--> train:" in exploded
    down = api.lineage("proj/data:v0", direction="downstream")
    assert "model:model:v0" in {n.label for n in down.nodes.values()}
    assert "load-data" not in {n.type for n in down.nodes.values()}
    assert api.lineage("proj/data:v0", direction="upstream", depth=1).to_mermaid().startswith("graph LR")
    assert "rankdir=LR" in graph.to_dot(explode=True)
    as_json = json.loads(json.dumps(graph.to_dict(explode=True)))
    assert {e["relation"] for e in as_json["edges"]} == {"produces", "consumes"}


def test_listing_projects_artifacts_and_runs(api: registry.Api) -> None:
    log_files("data", {"a": b"1"}, type="dataset")
    log_files("data", {"a": b"2"}, type="dataset")
    log_files("model", {"w": b"1"}, type="model", aliases=["best"])
    log_files("elsewhere", {"a": b"1"}, project="other")
    assert api.projects() == ["other", "proj"]
    collections = {c.name: c for c in api.artifacts("proj")}
    assert (collections["data"].version_count, collections["data"].latest.version) == (2, "v1")
    assert collections["model"].aliases == {0: ["latest", "best"]}
    assert [c.name for c in api.artifacts("proj", type="model")] == ["model"]
    assert len(api.runs("proj")) == 3
    with pytest.raises(registry.NotFoundError):
        api.run("proj/nosuchrun")


def test_project_defaults_to_the_active_run_then_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_PROJECT", "envproj")
    with registry.init() as run:
        assert run.project == "envproj"
        art = registry.Artifact("data", type="dataset")
        with art.new_file("a") as f:
            f.write("a")
        run.log_artifact(art)
        assert registry.Api().artifact("data:v0").qualified_name == "envproj/data:v0"


def test_logged_artifact_is_frozen(api: registry.Api) -> None:
    art = log_files("data", {"a": b"1"})
    with pytest.raises(registry.RegistryError, match="already logged"):
        art.add_file(__file__)
    with registry.init(project="proj") as run:
        with pytest.raises(registry.RegistryError, match="already logged"):
            run.log_artifact(art)


# -- reads for viewers (the web UI): listings without records, files and images verified --------------
def test_version_numbers_aliases_and_run_ids_come_from_listings(store_url: str) -> None:
    for n in range(3):
        log_files("data", {"a": str(n).encode()}, aliases=["best"] if n == 1 else None)
    log_files("data", {"a": b"1"}, project="other")
    api = registry.Api(store_url)
    reads: list[str] = []
    real = api.store.backend.read
    api.store.backend.read = lambda key, *a, **k: reads.append(key) or real(key, *a, **k)
    try:
        assert api.version_numbers("proj/data") == [0, 1, 2]
        assert api.aliases("proj/data") == {2: ["latest"], 1: ["best"]}
        assert len(api.run_ids("proj")) == 3 and len(api.run_ids("other")) == 1
        assert api.version_numbers("proj/nothing") == [] and api.run_ids("nothing") == []
    finally:
        del api.store.backend.read
    assert not [k for k in reads if "/versions/" in k or k.endswith("run.json")]
    collection = next(c for c in api.artifacts("proj") if c.name == "data")
    assert (collection.latest.version, collection.latest.aliases, collection.aliases[1]) == ("v2", ["latest"], ["best"])


def test_run_image_serves_only_images_the_run_logged(store_url: str) -> None:
    with registry.init(project="proj") as run:
        registry.log({"examples": [registry.Image(np.zeros((4, 4)), caption="a")], "one": registry.Image(np.ones((2, 2)))})
    other = log_files("data", {"a": b"not an image"})
    api = registry.Api(store_url)
    stored = api.run(f"proj/{run.id}")
    row = stored.history()[0]
    shas = {row["examples"][0]["sha256"], row["one"]["sha256"]}
    assert stored.image_shas == shas
    assert all(stored.image(sha).startswith(b"\x89PNG") for sha in shas)
    with pytest.raises(registry.NotFoundError, match="logged no image"):
        stored.image(other.files()[0].digest)  # a blob of the store, but no image of this run
    with pytest.raises(registry.InvalidNameError):
        stored.image("../../etc/passwd")


def test_cached_file_is_a_verified_local_copy(store_url: str) -> None:
    log_files("data", {"dir/a.txt": b"alpha"})
    api = registry.Api(store_url)
    entry = api.artifact("proj/data:v0").file_list().by_path()["dir/a.txt"]
    assert api.cached_file(entry).read_bytes() == b"alpha"
    forged = entry.replace(sha256="0" * 64)
    with pytest.raises(registry.NotFoundError):
        api.cached_file(forged)


def test_the_newest_runs_and_versions_are_read_without_reading_the_rest(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    from registry import keys as keymod
    from registry.store import open_store

    started = clock.time()
    ages = [400 * 86400, 20 * 86400, 3 * 86400, 5 * 3600, 600, 60]  # a year ago ... a minute ago
    real_new_run_id = keymod.new_run_id
    for age in ages:
        monkeypatch.setattr(keymod, "new_run_id", lambda age=age: real_new_run_id(started - age))
        with registry.init(project="busy", job_type=f"age-{age}"):
            pass
    monkeypatch.setattr(keymod, "new_run_id", real_new_run_id)
    for n in range(5):
        log_files("many", {"n.txt": str(n).encode()}, project="busy")
    store = open_store(store_url)
    read: list[str] = []
    real_read = store.backend.read
    monkeypatch.setattr(store.backend, "read", lambda key: (read.append(key), real_read(key))[1])
    api = registry.Api(store=store)
    newest = api.runs("busy", limit=7)
    assert [r.job_type for r in newest] == ["build"] * 5 + ["age-60", "age-600"]
    assert len([k for k in read if k.endswith("/run.json")]) == 7  # the other runs are not read
    assert [r.job_type for r in api.runs("busy", limit=9)][5:] == ["age-60", "age-600", "age-18000", "age-259200"]
    assert len(api.runs("busy")) == len(ages) + 5  # log_files makes a run each
    read.clear()
    versions = api.artifact_versions("busy/many", limit=2)
    assert [v.version for v in versions] == ["v3", "v4"]
    assert len([k for k in read if "/versions/" in k]) == 2
    assert [v.version for v in api.artifact_versions("busy/many")] == ["v0", "v1", "v2", "v3", "v4"]


def test_two_runs_never_share_a_record_even_when_their_ids_collide(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry import keys as keymod

    real_new_run_id = keymod.new_run_id
    ids = iter(["6b0fbe1aa5c619", "6b0fbe1aa5c619", "6b0fbe1aa5c620"])
    monkeypatch.setattr(keymod, "new_run_id", lambda now=None: next(ids, None) or real_new_run_id(now))
    first = registry.init(project="p", job_type="one")
    second = registry.init(project="p", job_type="two")  # drew the same id: it picks again
    second.finish()
    assert first.id == "6b0fbe1aa5c619" and second.id == "6b0fbe1aa5c620"
    api = registry.Api(store_url)
    assert api.run("p/6b0fbe1aa5c619").job_type == "one" and api.run("p/6b0fbe1aa5c620").job_type == "two"


def test_a_failing_block_reports_its_own_error_even_when_the_store_fails_too(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with registry.init(project="p", job_type="doomed") as run:
            def unreachable(*args, **kwargs):
                raise registry.StorageError("the store went away")
            monkeypatch.setattr(run.store.backend, "write", unreachable)
            raise Boom("the real problem")
    assert registry.run is None  # not left active by the failed record write
