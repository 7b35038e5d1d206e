"""A writer process for the race and crash tests: logs N versions and reports what it was told.

Usage: python race_worker.py NAME WRITER_ID COUNT [same]
Prints one JSON line per log call: {"version": ..., "commit_id": ..., "created": ...}.
With "same", every call logs identical contents (all writers racing on one version).
"""
from __future__ import annotations

import json
import os
import sys

import registry


def main() -> None:
    name, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    same = len(sys.argv) > 4 and sys.argv[4] == "same"
    with registry.init(project="race", job_type="writer") as run:
        for i in range(count):
            art = registry.Artifact(name, type="dataset")
            with art.new_file("shared.txt") as f:
                f.write("the same in every version\n")
            with art.new_file("payload.txt") as f:
                f.write("same" if same else f"writer {writer} call {i}\n")
            logged = run.log_artifact(art, aliases=["candidate"] if os.environ.get("RACE_ALIAS") else None)
            print(json.dumps({"version": logged.version, "commit_id": logged.commit_id, "created": logged.created}), flush=True)


if __name__ == "__main__":
    main()
