"""The file hash of a download, run on its own thread in file order while chunks land in any order."""
from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from registry import assembly as assembly_module
from registry.assembly import Assembly, FileHasher
from registry.errors import IntegrityError
from registry.records import FileEntry


def _assembly(tmp_path: Path, pieces: list[bytes], claimed: str | None = None) -> Assembly:
    body = b"".join(pieces)
    chunks = tuple((hashlib.sha256(p).hexdigest(), len(p)) for p in pieces)
    entry = FileEntry("model.bin", claimed or hashlib.sha256(body).hexdigest(), len(body), chunks=chunks)
    temp = tmp_path / "model.part"
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    return Assembly(entry, temp, fd)


def _pieces(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, 300_000)) for _ in range(count)]


@pytest.mark.parametrize("read_back", [7, 1 << 20])  # a chunk read back in pieces, or several at once
def test_chunks_landing_in_any_order_are_hashed_in_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             read_back: int) -> None:
    monkeypatch.setattr(assembly_module, "READ_BACK", read_back)
    pieces = _pieces(40)
    done = _assembly(tmp_path, pieces)
    hasher = FileHasher(window=0)  # every read but one waits for the hash: it must never stall
    order = list(range(len(pieces)))
    random.Random(2).shuffle(order)

    def land(index: int) -> None:
        with hasher.reading():
            done.write(index, memoryview(pieces[index]))
            hasher.landed(done, index)

    threads = [threading.Thread(target=land, args=(i,)) for i in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    hasher.finish()
    assert done.complete and done.digest.hexdigest() == done.entry.sha256
    assert done.temp.read_bytes() == b"".join(pieces)
    done.close()


def test_a_read_waits_only_while_another_is_in_flight(tmp_path: Path) -> None:
    """Past the window, a read is held back while another is under way, and goes ahead alone
    when none is (the chunk the hash waits for may be in the read that waits)."""
    pieces = _pieces(3)
    done = _assembly(tmp_path, pieces)
    hasher = FileHasher(window=0)
    with hasher.reading():  # the first chunk is not there: nothing can be hashed
        done.write(2, memoryview(pieces[2]))
        hasher.landed(done, 2)
    entered = threading.Event()
    release = threading.Event()

    def second() -> None:
        with hasher.reading():
            entered.set()
            release.wait(10)

    with hasher.reading():  # nothing else in flight: it goes ahead although the hash lags
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3)  # held back: a read is in flight and the hash lags
        for index in (0, 1):
            done.write(index, memoryview(pieces[index]))
            hasher.landed(done, index)
    assert entered.wait(10)
    release.set()
    thread.join()
    hasher.finish()
    assert done.digest.hexdigest() == done.entry.sha256
    done.close()


def test_a_temp_file_cut_short_before_it_is_hashed_is_an_integrity_error(tmp_path: Path) -> None:
    pieces = _pieces(4)
    done = _assembly(tmp_path, pieces)
    hasher = FileHasher()
    for index in (1, 2, 3):
        done.write(index, memoryview(pieces[index]))
        hasher.landed(done, index)
    os.truncate(done.temp, len(pieces[0]) + 10)  # something cut it while chunk 0 was on its way
    done.write(0, memoryview(pieces[0]))
    hasher.landed(done, 0)
    with pytest.raises(IntegrityError, match="truncated"):
        hasher.finish()
    done.close()


def test_bytes_that_differ_from_the_claimed_sha256_are_seen(tmp_path: Path) -> None:
    """The digest is of the bytes in the temp file: a claim they do not match is caught by the
    reader (``PackedReader`` refuses the file: test_format2 covers it end to end)."""
    pieces = _pieces(5)
    done = _assembly(tmp_path, pieces, claimed=hashlib.sha256(b"something else").hexdigest())
    hasher = FileHasher()
    for index in reversed(range(5)):
        done.write(index, memoryview(pieces[index]))
        hasher.landed(done, index)
    hasher.finish()
    assert done.complete and done.digest.hexdigest() != done.entry.sha256
    done.close()


def test_abandoning_after_a_failure_stops_without_hashing_the_rest(tmp_path: Path) -> None:
    pieces = _pieces(3)
    done = _assembly(tmp_path, pieces)
    hasher = FileHasher()
    hasher.abandon()
    assert done.hashed == 0
    done.close()
