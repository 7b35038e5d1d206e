"""The README's SeaweedFS route works as written (with free ports substituted)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from servers import find_weed, pick_ports

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_seaweedfs_route_runs(tmp_path: Path) -> None:
    weed_line = next(line for line in README.splitlines() if line.startswith("weed server "))
    exports = next(line for line in README.splitlines() if line.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:8333"))
    bucket_line = next(line for line in README.splitlines() if "create_bucket(Bucket='registry')" in line)
    master, volume, filer, s3 = pick_ports(4)
    args = shlex.split(weed_line.rstrip(" &"))[2:]
    args = [a for a in args if not a.startswith(("-dir=", "-s3.port="))]
    args += [f"-dir={tmp_path}", f"-s3.port={s3}", f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
    assert "-volume.preStopSeconds=0" in args  # the README's server stops at once on Ctrl-C
    env = dict(re.findall(r"(AWS_[A-Z_]+)=(\S+)", exports))
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{s3}"
    import os

    child_env = {**os.environ, **env, "REGISTRY_URL": "s3://registry/", "REGISTRY_CACHE_DIR": str(tmp_path / "cache")}
    server = subprocess.Popen([find_weed(), "server", *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        create = [sys.executable, *shlex.split(bucket_line)[1:]]
        deadline = time.time() + 120
        while True:  # one attempt per poll while the server starts (AWS_MAX_ATTEMPTS is boto3's own variable)
            made = subprocess.run(create, env={**child_env, "AWS_MAX_ATTEMPTS": "1"}, capture_output=True, text=True)
            if made.returncode == 0:
                break
            assert time.time() < deadline, made.stderr[-1000:]
            time.sleep(1)
        script = (
            "import registry\n"
            "with registry.init(project='readme') as run:\n"
            "    a = registry.Artifact('notes', type='dataset')\n"
            "    with a.new_file('n.txt') as f: f.write('hi')\n"
            "    print(run.log_artifact(a).qualified_name)\n"
            "print(open(registry.Api().artifact('readme/notes:latest').download('dl') + '/n.txt').read())\n"
        )
        out = subprocess.run([sys.executable, "-c", script], env=child_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["readme/notes:v0", "hi"]
    finally:
        server.kill()
        server.wait()


def test_readme_cli_examples_run_as_written_after_the_demo(tmp_path: Path, monkeypatch) -> None:
    """Every command of the README's CLI block succeeds on a store holding what the demo logs."""
    import os
    import shutil

    import registry

    block = README.split("After the demo above", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line, comments=True) for line in block.strip().splitlines()]
    assert commands and all(c[0] == "registry" for c in commands)
    store, work = tmp_path / "store", tmp_path / "work"
    monkeypatch.setenv("REGISTRY_URL", str(store))
    (work / "weights").mkdir(parents=True)
    (work / "weights" / "trained_model.pth").write_bytes(b"weights")
    with registry.init(project="mnist-pipeline", job_type="train") as run:  # what the demo's train step logs
        model = registry.Artifact("trained-model", type="model")
        model.add_dir(work / "weights")
        run.log_artifact(model, aliases=["best"])
    shutil.copytree(Path(__file__).parent.parent / "examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "REGISTRY_URL": str(store)}
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "registry.cli", *command[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stderr)
    assert (work / "model" / "trained_model.pth").read_bytes() == b"weights"
    assert registry.Api(str(store)).artifact("mnist-pipeline/trained-model:production").version == "v0"


def test_readme_quick_start_python_runs_as_written(tmp_path: Path, monkeypatch) -> None:
    """The quick start's Python blocks, in order, on a local store holding data/ and model.pt."""
    import registry

    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    assert len(blocks) >= 2
    monkeypatch.setenv("REGISTRY_URL", str(tmp_path / "store"))
    (Path("data")).mkdir()
    Path("data/train.pt").write_bytes(b"digits")
    Path("model.pt").write_bytes(b"weights")
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert Path(namespace["weights"]).read_bytes() == b"weights"
    assert Path(namespace["path"], "train.pt").read_bytes() == b"digits"
    link = registry.Api().artifact("registry/mnist:production")
    assert (link.source_qualified_name, link.is_link) == ("demo/convnet:v0", True)
    shared = registry.Api().artifact("demo/mnist-shared:latest")  # the reference stays in data/
    assert {f.ref for f in shared.files()} == {(Path("data") / "train.pt").absolute().as_uri()}
