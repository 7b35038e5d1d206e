"""A separate "machine" for the offline tests: a process with its own cache directory.

Usage: python offline_worker.py COMMAND [ARGS]
  pipeline          offline: train on raw:best, log model:best (history image, saved file), evaluate it
  log NAME COUNT TAG  offline: COUNT runs, each logging a new version of NAME (contents from TAG)
  use-model ADDRESS   offline: use_artifact(ADDRESS) and use_model(ADDRESS), both downloaded
  alias ADDRESS ALIAS  offline: point ALIAS at the version ADDRESS names
  sync [PAUSE_AT]   online: registry.sync(); with PAUSE_AT, print "PAUSED <point>" there and wait to be killed
  copy SRC DST PROJECT PAUSE_AT   registry.copy_store(), pausing likewise

Offline commands refuse every network connection (any attempt exits with code 99), so a test
passes only if offline mode sends nothing. Each command prints one JSON line.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import registry

NETWORK_USED = 99


def refuse_network() -> None:
    """Make every outgoing connection end the process: offline means no request at all."""

    def refuse(*args, **kwargs):
        print(f"network used offline: {args[1:] or kwargs}", file=sys.stderr, flush=True)
        os._exit(NETWORK_USED)

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def pipeline() -> dict:
    from PIL import Image as PILImage

    warnings = Warnings()
    logging.getLogger("registry").addHandler(warnings)
    with registry.init(project="proj", job_type="train", mode="offline") as run:
        raw = run.use_artifact("raw:best")
        folder = Path(raw.download("raw-offline"))
        raw_text = (folder / "data.txt").read_text()
        run.log({"loss": 0.5, "sample": registry.Image(PILImage.new("RGB", (4, 4), "red"))})
        Path("notes.txt").write_text("trained offline")
        run.save("notes.txt")
        model = registry.Artifact("model", type="model")
        with model.new_file("weights.bin", mode="wb") as f:
            f.write(b"weights trained on " + raw_text.encode())
        run.log_artifact(model, aliases=["best"])
        same = registry.Artifact("shared", type="dataset")
        with same.new_file("same.txt") as f:
            f.write("identical everywhere")
        run.log_artifact(same)
    with registry.init(project="proj", job_type="eval", mode="offline") as run:
        used = run.use_artifact("model:best")
        used.download("model-offline")
        report = registry.Artifact("report", type="report")
        with report.new_file("score.txt") as f:
            f.write("0.9")
        run.log_artifact(report)
    try:
        registry.Api(mode="offline").artifact("proj/never-seen:best")
        missing = ""
    except registry.NotFoundError as e:
        missing = str(e)
    return {"raw_text": raw_text, "model": model.qualified_name, "model_digest": model.digest,
            "warnings": warnings.messages, "missing": missing}


def log(name: str, count: int, tag: str) -> dict:
    logged = []
    for i in range(count):
        with registry.init(project="proj", job_type=f"writer-{tag}", mode="offline") as run:
            art = registry.Artifact(name, type="dataset")
            with art.new_file("payload.txt") as f:
                f.write(f"{tag} {i}\n")
            run.log_artifact(art, aliases=["best"] if i == count - 1 else None)
            logged.append({"run": run.id, "commit_id": art.commit_id, "digest": art.digest})
    return {"logged": logged}


def use_model(address: str) -> dict:
    with registry.init(project="proj", job_type="evaluate", mode="offline") as run:
        art = run.use_artifact(address)
        folder = Path(art.download("used-offline"))
        path = run.use_model(address)
        return {"qualified_name": art.qualified_name, "source": art.source_qualified_name,
                "files": sorted(p.name for p in folder.iterdir()), "model_bytes": Path(path).read_text()}


def move_alias(address: str, alias: str) -> dict:
    art = registry.Api(mode="offline").artifact(address)
    art.aliases.append(alias)
    art.save()
    return {"moved": f"{art.qualified_name} {alias}"}


def offline_command(command: str, args: list[str]) -> dict:
    if command == "pipeline":
        return pipeline()
    if command == "use-model":
        return use_model(args[0])
    if command == "alias":
        return move_alias(args[0], args[1])
    return log(args[0], int(args[1]), args[2])


def pause_at(wanted: str | None):
    """Pause at ``point`` (its first time) or ``point@N`` (its N-th time)."""
    label, _, nth = (wanted or "").partition("@")
    seen = {"count": 0}

    def crash(point: str) -> None:
        if point == label:
            seen["count"] += 1
            if seen["count"] == int(nth or 1):
                print(f"PAUSED {wanted}", flush=True)
                time.sleep(3600)

    return crash


def sync(point: str | None) -> dict:
    report = registry.sync(crash=pause_at(point))
    return {"versions": report.versions, "conflicts": report.conflicts, "runs": report.runs}


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "sync":
        result = sync(args[0] if args else None)
    elif command == "copy":
        report = registry.copy_store(args[0], args[1], projects=[args[2]], crash=pause_at(args[3]))
        result = {"copied": report.copied}
    else:
        refuse_network()
        result = offline_command(command, args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
