"""Eight processes move alias ``best`` at once, by compare-and-swap: one wins, the others are told.

Each round, every mover reads where ``best`` points, waits at a barrier until all have read,
then calls ``Api.set_alias(<its own version>, "best", expected_version=<what it read>)``.
All expected the same version, so exactly one write may succeed: that mover is told True,
every other one gets ``ConflictError``, and ``best`` ends on the winner's version.

Run as ``python test_alias_race.py mover ID ROUNDS`` this file is one mover process.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import close_and_reap, log_versions_for_alias_movers

import registry

MOVERS, ROUNDS = 8, 2
COUNTS = {"processes": 0, "moves": 0}


def target_of(mover: int, round_: int) -> int:
    return 1 + round_ * MOVERS + mover  # every mover, every round: its own version


def mover(mover_id: int, rounds: int) -> None:
    api = registry.Api()
    api.store.check_writable()  # the capability probe, before the barrier
    first_expected = None
    for round_ in range(rounds):
        assert sys.stdin.readline().strip() == "READ"
        expected = int(api.artifact("proj/model:best").version[1:])
        first_expected = expected if first_expected is None else first_expected
        print(f"READY {expected}", flush=True)
        assert sys.stdin.readline().strip() == "GO"
        target = target_of(mover_id, round_)
        try:
            won = api.set_alias(f"proj/model:v{target}", "best", expected_version=expected)
            outcome = {"won": won is True, "error": None}
        except registry.ConflictError as e:
            outcome = {"won": False, "error": f"ConflictError: {e}"}
        print(json.dumps({"round": round_, "mover": mover_id, "expected": expected, "target": target, **outcome}), flush=True)
    assert sys.stdin.readline().strip() == "STALE"  # all at once again, with what they read in round 0
    try:
        outcome = {"won": api.set_alias(f"proj/model:v{target_of(mover_id, 0)}", "best", expected_version=first_expected) is True, "error": None}
    except registry.ConflictError as e:
        outcome = {"won": False, "error": f"ConflictError: {e}"}
    print(json.dumps({"round": "stale", "mover": mover_id, **outcome}), flush=True)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_eight_movers_one_winner_per_round(store_url: str, tmp_path: Path, capsys) -> None:
    from store_fixtures import subprocess_env

    log_versions_for_alias_movers(1 + ROUNDS * MOVERS)
    api = registry.Api(store_url)
    assert api.artifact("proj/model:best").version == "v0"

    procs = [
        subprocess.Popen([sys.executable, __file__, "mover", str(i), str(ROUNDS)], env=subprocess_env(store_url, tmp_path / f"cache-{i}"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(MOVERS)
    ]
    COUNTS["processes"] += MOVERS
    rounds = []
    try:
        for round_ in range(ROUNDS):
            for p in procs:
                p.stdin.write("READ\n")
                p.stdin.flush()
            read = [p.stdout.readline().split() for p in procs]
            assert all(r[:1] == ["READY"] for r in read), read
            before = {int(r[1]) for r in read}
            assert len(before) == 1, f"movers read different versions: {before}"
            for p in procs:  # the barrier: nobody writes before everybody has read
                p.stdin.write("GO\n")
                p.stdin.flush()
            results = [json.loads(p.stdout.readline()) for p in procs]
            COUNTS["moves"] += len(results)
            winners = [r for r in results if r["won"]]
            losers = [r for r in results if not r["won"]]
            final = int(api.artifact("proj/model:best").version[1:])
            rounds.append((before.pop(), len(winners), final))
            assert len(winners) == 1, f"round {round_}: {len(winners)} movers were told they won: {results}"
            assert final == winners[0]["target"], f"round {round_}: best is v{final}, the winner wrote v{winners[0]['target']}"
            assert all(r["error"] and r["error"].startswith("ConflictError") for r in losers), losers
            record = api.artifact("proj/model:best")
            assert record.digest == api.artifact(f"proj/model:v{final}").digest
        for p in procs:
            p.stdin.write("STALE\n")
            p.stdin.flush()
        stale = [json.loads(p.stdout.readline()) for p in procs]
        COUNTS["moves"] += len(stale)
        assert not any(r["won"] for r in stale), f"a mover with a stale expected version was told it won: {stale}"
        assert all(r["error"].startswith("ConflictError") for r in stale), stale
        assert int(api.artifact("proj/model:best").version[1:]) == final  # nobody moved it
    finally:
        close_and_reap(procs)
    with capsys.disabled():
        label = "seaweed" if store_url.startswith("s3://") else "local"
        print(f"\n[test_alias_race] {label}: {MOVERS} movers x {ROUNDS} rounds (read, winners, final): {rounds}; then a stale round, all refused")


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "mover":
    mover(int(sys.argv[2]), int(sys.argv[3]))
