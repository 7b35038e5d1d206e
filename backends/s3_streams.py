"""The file-like objects an S3 transfer reads from and writes to, each hashing the bytes that
actually move: what an upload sent, and a large download's parts as they join up in order."""
from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import ContentMismatch

CHUNK = 1 << 20


class SentBytes:
    """An upload's body as botocore or s3transfer reads it from an open file.

    It holds the ``size`` bytes the file had when the upload began (a file that grew sends its
    first ``size`` bytes; one that shrank sends zeros past its end, which the checksum refuses)
    and the sha256 of the bytes handed out, in order. A read from offset 0 starts that hash
    afresh (a retried request reads its body again); a read anywhere else but where the last
    one ended leaves it unknown. With ``refuse``, the read that reaches the end raises
    ``ContentMismatch`` unless what was read hashes to it.
    """

    def __init__(self, file, size: int, refuse: str | None = None, name: str = "") -> None:
        self.file, self.size, self.refuse, self.name = file, size, refuse, name
        self._offset = 0
        self._file_at = 0  # where the file's own position is: seek only when a read starts elsewhere
        self._hasher = hashlib.sha256()
        self._hashed = 0  # bytes [0, _hashed) were fed to _hasher, in order
        self._in_order = True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._offset

    def seek(self, offset: int, whence: int = 0) -> int:
        self._offset = max(0, offset + (0, self._offset, self.size)[whence])
        return self._offset

    def read(self, amount: int | None = -1) -> bytes:
        start = self._offset
        wanted = max(0, self.size - start if amount is None or amount < 0 else min(amount, self.size - start))
        if start != self._file_at:
            self.file.seek(start)
        data = self.file.read(wanted)
        self._file_at = start + len(data)
        data += bytes(wanted - len(data))  # the file shrank
        self._offset = start + wanted
        self._follow(start, data)
        return data

    def _follow(self, start: int, data: bytes) -> None:
        if start == 0:
            self._hasher, self._hashed, self._in_order = hashlib.sha256(), 0, True
        if start != self._hashed or not self._in_order:
            self._in_order = False
            return
        self._hasher.update(data)
        self._hashed += len(data)
        if self.refuse and data and self._hashed == self.size and self.sha256() != self.refuse:
            raise ContentMismatch(changed_message(self.name, self.refuse))

    def sha256(self) -> str | None:
        """The hash of the whole body as it was last read from the start, if it was read in order."""
        return self._hasher.hexdigest() if self._in_order and self._hashed == self.size else None


def changed_message(path, sha256: str) -> str:
    return f"{path} no longer hashes to sha256 {sha256}: it changed after it was hashed"


class ProgressSubscriber:
    """Passes s3transfer's byte counts (as parts are sent) to a progress callback."""

    def __init__(self, progress) -> None:
        self.progress = progress

    def on_queued(self, future, **kwargs) -> None:
        pass

    def on_progress(self, future, bytes_transferred: int, **kwargs) -> None:
        self.progress(bytes_transferred)

    def on_done(self, future, **kwargs) -> None:
        pass


class HashedInOrder:
    """The file s3transfer writes a large blob into, part by part at their offsets, in parallel.

    A thread of its own feeds ``hasher`` the bytes in order, reading back (from the page cache)
    each stretch as soon as it joins the unbroken prefix; the download itself runs at full speed
    and the hash is ready moments after the last part lands, without holding parts in memory.
    """

    def __init__(self, fd: int, hasher) -> None:
        self.fd, self.hasher = fd, hasher
        self._offset = 0
        self._written: dict[int, int] = {}  # start -> end of stretches beyond the prefix
        self._prefix = 0  # bytes [0, _prefix) are all written
        self._done = False
        self._failure: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = (
            threading.Thread(target=self._follow, name="registry-hash", daemon=True) if hasher else None
        )
        if self._thread:
            self._thread.start()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise io.UnsupportedOperation("only absolute seeks")
        self._offset = offset
        return offset

    def tell(self) -> int:
        return self._offset

    def write(self, data: bytes) -> int:
        start, view = self._offset, memoryview(data)
        while view:
            view = view[os.pwrite(self.fd, view, self._offset) :]
            self._offset = start + len(data) - len(view)
        with self._changed:
            self._written[start] = max(self._offset, self._written.get(start, 0))
            while self._prefix in self._written:
                self._prefix = max(self._prefix, self._written.pop(self._prefix))
            self._changed.notify()
        return len(data)

    def _follow(self) -> None:
        hashed = 0
        try:
            while True:
                with self._changed:
                    while hashed >= self._prefix and not self._done:
                        self._changed.wait()
                    end, done = self._prefix, self._done
                while hashed < end:
                    chunk = os.pread(self.fd, min(CHUNK, end - hashed), hashed)
                    if not chunk:
                        raise OSError(f"file ended at {hashed} of {end} bytes while hashing")
                    self.hasher.update(chunk)
                    hashed += len(chunk)
                if done:
                    return
        except BaseException as e:  # reported by finish()
            self._failure = e

    def finish(self) -> None:
        """Wait until every written byte is hashed (or the follower failed, which is raised)."""
        if self._thread is None:
            return
        with self._changed:
            self._done = True
            self._changed.notify()
        self._thread.join()
        if self._failure is not None:
            raise self._failure


class ByteBudget:
    """How many bytes transfers may hold in memory at once: each takes its share before it
    reads or fetches, and gives it back when the bytes are gone. A share larger than the whole
    budget is cut to it (such a transfer then runs alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    def _share(self, amount: int) -> int:
        return min(amount, self.limit)

    def try_acquire(self, amount: int) -> bool:
        with self._changed:
            if self.used + self._share(amount) > self.limit:
                return False
            self.used += self._share(amount)
            return True

    def acquire(self, amount: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self.used + self._share(amount) <= self.limit)
            self.used += self._share(amount)

    def release(self, amount: int) -> None:
        with self._changed:
            self.used -= self._share(amount)
            self._changed.notify_all()

    @contextmanager
    def holding(self, amount: int) -> Iterator[None]:
        self.acquire(amount)
        try:
            yield
        finally:
            self.release(amount)
