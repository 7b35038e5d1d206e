from __future__ import annotations

from collections.abc import Iterator

import pytest

from servers import SeaweedServer


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """One SeaweedFS S3 server on loopback for the whole test session."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()

from store_fixtures import *  # noqa: E402,F401,F403  (backend-parametrized fixtures)
