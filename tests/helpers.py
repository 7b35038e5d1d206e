"""Small builders shared by the tests."""
from __future__ import annotations

import pytest

import registry


def print_past_capture(request: pytest.FixtureRequest, line: str) -> None:
    """Print a module's totals even under pytest's output capture (they show what a test tried)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")


def log_files(name: str, files: dict[str, bytes], *, project: str = "proj", type: str = "dataset",
              aliases: list[str] | None = None, metadata: dict | None = None, job_type: str = "build") -> registry.Artifact:
    """Log an artifact holding ``files`` from a fresh run; returns the logged artifact."""
    with registry.init(project=project, job_type=job_type) as run:
        artifact = registry.Artifact(name, type=type, metadata=metadata)
        for path, data in files.items():
            with artifact.new_file(path, mode="wb") as f:
                f.write(data)
        return run.log_artifact(artifact, aliases=aliases)
