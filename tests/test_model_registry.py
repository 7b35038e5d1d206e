"""The model registry: links into ``registry/<collection>`` hold their source's contents (no copy),
resolve everywhere an address does, and show in lineage; W&B's model calls on a run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import log_files

import registry
from registry.cli import cli
from registry.links import parse_link_target
from registry.ui import create_app


def _blob_keys(api: registry.Api) -> set[str]:
    return {info.key for info in api.store.backend.list("blobs/")}


def test_a_link_is_a_registry_version_with_its_sources_contents_and_no_copy(store_url: str, tmp_path: Path) -> None:
    source = log_files("convnet", {"weights.bin": b"w" * 1000, "config.json": b"{}"}, project="team-a", type="model")
    api = registry.Api(store_url)
    blobs_before = _blob_keys(api)
    with registry.init(project="team-a", job_type="promote") as run:
        link = run.link_artifact(source, "registry/mnist", aliases=["production"])
    assert _blob_keys(api) == blobs_before  # nothing copied, not even the file list
    assert (link.qualified_name, link.is_link, link.digest) == ("registry/mnist:v0", True, source.digest)
    assert (link.source_project, link.source_name, link.source_version) == ("team-a", "convnet:v0", "v0")
    assert link.source_artifact.qualified_name == "team-a/convnet:v0"
    assert [a.qualified_name for a in source.linked_artifacts] == ["registry/mnist:v0"]
    assert link.record.source == source.record.ref()
    fetched = api.artifact("registry/mnist:production")
    root = Path(fetched.download(tmp_path / "dl"))
    assert (root / "weights.bin").read_bytes() == b"w" * 1000
    fetched.verify(root)


def test_wandb_target_forms_all_reach_the_one_registry_and_relinking_reuses_the_link(store_url: str) -> None:
    source = log_files("convnet", {"w.bin": b"1"}, project="team-a", type="model")
    forms = ["registry/mnist", "wandb-registry-model/mnist", "my-org/wandb-registry-model/mnist",
             "model-registry/mnist", "my-entity/model-registry/mnist"]
    with registry.init(project="team-a", job_type="promote") as run:
        links = [run.link_artifact(source, form, aliases=[f"a{i}"]) for i, form in enumerate(forms)]
    assert {link.qualified_name for link in links} == {"registry/mnist:v0"}
    api = registry.Api(store_url)
    assert api.artifact("registry/mnist:a4").aliases == ["latest", "a0", "a1", "a2", "a3", "a4"]
    for address in ("wandb-registry-model/mnist:a0", "my-org/wandb-registry-model/mnist:latest",
                    "model-registry/mnist:v0"):
        assert api.artifact(address).qualified_name == "registry/mnist:v0"
    assert parse_link_target("mnist", "team-a").project == "team-a"  # a bare name: a collection of links in the project


def test_collections_gather_versions_from_many_projects(store_url: str) -> None:
    a = log_files("convnet", {"w.bin": b"a"}, project="team-a", type="model")
    b = log_files("resnet", {"w.bin": b"b"}, project="team-b", type="model")
    same = log_files("copycat", {"w.bin": b"b"}, project="team-c", type="model")  # b's contents, another source
    with registry.init(project="team-a", job_type="promote") as run:
        run.link_artifact(a, "registry/mnist", aliases=["staging"])
        run.link_artifact(b, "registry/mnist", aliases=["production"])
        run.link_artifact(same, "registry/mnist")
    api = registry.Api(store_url)
    collection = api.artifact_collection("model", "registry/mnist")
    assert (collection.name, collection.type, collection.is_sequence()) == ("mnist", "model", False)
    assert collection.aliases == ["latest", "production", "staging"]
    assert [(v.qualified_name, v.source_qualified_name) for v in collection.versions()] == [
        ("registry/mnist:v0", "team-a/convnet:v0"), ("registry/mnist:v1", "team-b/resnet:v0"),
        ("registry/mnist:v2", "team-c/copycat:v0")]
    collection.description, collection.tags = "MNIST classifiers", ["vision", "prod ready"]
    collection.save()
    again = registry.Api(store_url).artifact_collection("model", "registry/mnist")
    assert (again.description, again.tags) == ("MNIST classifiers", ["vision", "prod ready"])
    assert [c.name for c in api.artifact_collections("wandb-registry-model", "model")] == ["mnist"]
    with pytest.raises(registry.NotFoundError, match="holds 'model' versions, not 'dataset'"):
        api.artifact_collection("dataset", "registry/mnist")


def test_log_model_use_model_and_link_model(store_url: str, tmp_path: Path) -> None:
    single = tmp_path / "model.pt"
    single.write_bytes(b"single")
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    (folder / "b.bin").write_bytes(b"b")
    with registry.init(project="train", job_type="train") as run:
        logged = run.log_model(single, aliases=["best"])
        assert (logged.name, logged.type, logged.aliases) == (f"run-{run.id}-model.pt", "model", ["latest", "best"])
        linked = run.link_model(folder, "classifier", name="bundle", aliases=["production"])
        assert (linked.qualified_name, linked.source_qualified_name) == ("registry/classifier:v0", "train/bundle:v0")
        with pytest.raises(registry.InvalidNameError, match="give only the name"):
            run.link_model(folder, "org/classifier")
    log_files("data", {"x": b"x"}, project="train", type="dataset")
    with registry.init(project="serve", job_type="serve") as run:
        path = Path(run.use_model(f"train/{logged.name}:best"))
        assert path.is_file() and path.read_bytes() == b"single"
        directory = Path(run.use_model("registry/classifier:production"))
        assert sorted(p.name for p in directory.iterdir()) == ["a.bin", "b.bin"]
        with pytest.raises(registry.InvalidNameError, match="use_model takes models"):
            run.use_model("train/data:latest")
    used = registry.Api(store_url).artifact("registry/classifier:production").used_by()
    assert [r.job_type for r in used] == ["serve"]


def test_registry_addresses_work_in_the_cli_and_the_ui(store_url: str, tmp_path: Path) -> None:
    source = log_files("convnet", {"w.bin": b"weights"}, project="team-a", type="model")
    source.link("registry/mnist", aliases=["staging"])
    runner, env = CliRunner(), {"REGISTRY_URL": store_url}

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), prog_name="registry", env=env)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    run("alias", "set", "registry/mnist:staging", "production")
    shown = json.loads(run("show", "registry/mnist:production", "--json"))
    assert (shown["address"], shown["link_of"]) == ("registry/mnist:v0", "team-a/convnet:v0")
    assert json.loads(run("show", "team-a/convnet:v0", "--json"))["linked_as"] == ["registry/mnist:v0"]
    run("pull", "registry/mnist:production", "-d", str(tmp_path / "m"))
    assert (tmp_path / "m" / "w.bin").read_bytes() == b"weights"
    assert json.loads(run("ls", "registry", "--json"))[0]["name"] == "mnist"
    linked = json.loads(run("link", "team-a/convnet:v0", "wandb-registry-model/other", "--alias", "x", "--json"))
    assert (linked["address"], linked["aliases"]) == ("registry/other:v0", ["latest", "x"])
    client = create_app(store_url).test_client()
    page = client.get("/projects/registry/artifacts/mnist/production", follow_redirects=True)
    assert page.status_code == 200 and b"team-a/convnet:v0" in page.data and b"link of" in page.data


def test_lineage_shows_the_link_between_source_and_registry(store_url: str) -> None:
    source = log_files("convnet", {"w.bin": b"weights"}, project="team-a", type="model", job_type="train")
    source.link("registry/mnist")
    api = registry.Api(store_url)
    up = api.lineage("registry/mnist:latest", direction="upstream").to_dict(explode=True)
    edges = {(e["source"], e["target"], e["relation"]) for e in up["edges"]}
    assert ("artifact:team-a/convnet:v0", "artifact:registry/mnist:v0", "links") in edges
    assert any(e[2] == "produces" and e[1] == "artifact:team-a/convnet:v0" for e in edges)  # the train run
    down = api.lineage("team-a/convnet:v0", direction="downstream").to_text(explode=True)
    assert "model:convnet:v0 (artifact) --linked as--> model:mnist:v0 (artifact)" in down


def test_the_registry_holds_links_only(store_url: str) -> None:
    log_files("data", {"x": b"x"}, project="team-a", type="dataset")
    with pytest.raises(registry.InvalidNameError, match="holds links only"):
        log_files("direct", {"x": b"y"}, project="registry", type="model")
    with pytest.raises(registry.InvalidNameError, match="holds links only"):
        log_files("direct", {"x": b"y"}, project="wandb-registry-model", type="model")
    model = log_files("convnet", {"w": b"w"}, project="team-a", type="model")
    with pytest.raises(registry.InvalidNameError, match="holds logged versions, not links"):
        model.link("team-a/data")
    model.link("registry/mnist")
    dataset = registry.Api(store_url).artifact("team-a/data:latest")
    with pytest.raises(registry.InvalidNameError, match="holds 'model' versions, not 'dataset'"):
        dataset.link("registry/mnist")


def test_unlink_removes_the_link_and_its_aliases_and_keeps_the_source(store_url: str) -> None:
    source = log_files("convnet", {"w.bin": b"weights"}, project="team-a", type="model", aliases=["best"])
    link = source.link("registry/mnist", aliases=["production"])
    link.unlink()
    api = registry.Api(store_url)
    with pytest.raises(registry.NotFoundError):
        api.artifact("registry/mnist:production")
    with pytest.raises(registry.NotFoundError, match="was deleted"):
        api.artifact("registry/mnist:v0")
    assert api.artifact("team-a/convnet:best").linked_artifacts == []
    with pytest.raises(registry.InvalidNameError, match="is not a link"):
        source.unlink()
    relinked = source.link("registry/mnist")
    assert relinked.version == "v1"  # a new link, never the deleted number again


def test_exists_checks_collection_delete_and_save_outside_a_run(store_url: str) -> None:
    model = log_files("convnet", {"w": b"w"}, project="team-a", type="model")
    api = registry.Api(store_url)
    assert api.artifact_exists("team-a/convnet:v0") and not api.artifact_exists("team-a/convnet:v9")
    assert not api.artifact_exists("team-a/convnet:v0", type="dataset")
    model.link("registry/mnist", aliases=["production"])
    assert api.artifact_collection_exists("registry/mnist", "model")
    with pytest.raises(registry.ConflictError, match="linked into the registry"):
        api.artifact_collection("model", "team-a/convnet").delete()
    api.artifact_collection("model", "registry/mnist").delete()  # unlinks every link
    assert not api.artifact_collection_exists("registry/mnist", "model")
    assert api.artifact_exists("team-a/convnet:v0")
    draft = registry.Artifact("notes", type="dataset")
    with draft.new_file("n.txt") as f:
        f.write("hi")
    draft.save(project="team-b")  # no run: W&B logs it through a run of job type "auto"
    assert draft.qualified_name == "team-b/notes:v0"
    assert draft.logged_by().job_type == "auto"


def test_artifact_versions_takes_wandbs_type_and_name_form(store_url: str) -> None:
    log_files("convnet", {"w": b"0"}, project="team-a", type="model")
    log_files("convnet", {"w": b"1"}, project="team-a", type="model")
    api = registry.Api(store_url)
    assert [v.version for v in api.artifact_versions("model", "team-a/convnet")] == ["v0", "v1"]
    assert [v.version for v in api.artifact_versions("team-a/convnet")] == ["v0", "v1"]
    with pytest.raises(registry.NotFoundError, match="not 'dataset'"):
        api.artifact_versions("dataset", "team-a/convnet")
