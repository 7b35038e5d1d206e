"""What starting the library costs: importing ``registry`` loads only what a call needs, and the
interpreter's last garbage collection is skipped at exit. Each check runs in a fresh interpreter,
since this test process has imported everything already."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_python(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "REGISTRY_URL": str(tmp_path / "store"), "REGISTRY_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


WRITING_SIDE = ("registry.runs", "registry.publish", "registry.chunk_upload", "registry.pack_writer")


def test_reading_a_store_does_not_import_the_writing_side(tmp_path: Path) -> None:
    out = run_python("import sys, registry\n"
                     "api = registry.Api()\n"
                     f"print(sorted(m for m in {WRITING_SIDE!r} if m in sys.modules))", tmp_path)
    assert out.strip() == "[]"


def test_a_pull_over_s3_does_not_import_the_http_stack_it_does_not_use(tmp_path: Path) -> None:
    """urllib.request and ssl (~25 ms) are for http(s) references and obstore's conditional
    DELETE: loaded when those run, not by every CLI call that opens an S3 store."""
    out = run_python("import sys, registry, registry.download, registry.references, registry.cli.group\n"
                     "from backends import s3_obstore\n"
                     "print(sorted(m for m in ('ssl', 'urllib.request', 'http.client') if m in sys.modules))",
                     tmp_path)
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", ["init", "Run", "finish", "log", "save", "Artifact", "ArtifactFile", "Image",
                                  "Config", "Summary", "Api", "ApiRun", "sync", "copy_store",
                                  "export_bundle", "import_bundle"])
def test_every_public_name_is_there_on_first_use(name: str, tmp_path: Path) -> None:
    out = run_python(f"import registry\nprint(getattr(registry, {name!r}).__name__)", tmp_path)
    assert out.strip() == name


def test_star_import_gives_every_public_name(tmp_path: Path) -> None:
    out = run_python("from registry import *\nimport registry\n"
                     "print(all(name in globals() for name in registry.__all__ if name not in "
                     "('run', 'config', 'summary')))", tmp_path)
    assert out.strip() == "True"


def test_a_new_artifact_saved_outside_a_run_logs_through_an_automatic_run(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    out = run_python("import registry\n"
                     "art = registry.Artifact('notes', type='dataset')\n"
                     "art.add_file('a.txt')\n"
                     "art.save()\n"
                     "print(registry.Api().artifact('uncategorized/notes:latest').version)", tmp_path)
    assert out.strip() == "v0"


def test_objects_left_at_exit_are_frozen_before_the_last_collection(tmp_path: Path) -> None:
    # atexit runs its handlers last registered first: this one runs after the library's own
    out = run_python("import atexit, gc\n"
                     "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
                     "import registry", tmp_path)
    assert out.strip() == "frozen True"


def test_a_submodule_is_there_as_an_attribute_on_first_use(tmp_path: Path) -> None:
    out = run_python("import registry\nprint(registry.hashing.sha256_bytes(b'') [:8], hasattr(registry, 'nothere'))",
                     tmp_path)
    assert out.split() == ["e3b0c442", "False"]
