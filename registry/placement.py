"""How a verified local file reaches a download root: reflink, copy or hardlink.

Reflinks (copy-on-write clones) are instant and keep an edit of the download from reaching
the source; where the filesystem cannot, bytes are copied in the kernel. Hardlinks are
opt-in (``REGISTRY_LINK_MODE=hardlink``): the download would share its inode with the
cache, and read-only bits stop neither root nor a ``chmod`` before an edit.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import uuid
from pathlib import Path

from .settings import LinkMode
from .tempnames import remove_if_present, temp_beside

FICLONE = 0x40049409


class Placement:
    """The link mode, and what this machine's filesystems turned out to support (learned once)."""

    def __init__(self, mode: LinkMode = "auto") -> None:
        self.mode = mode
        self.reflink_ok: bool | None = None
        self.hardlink_ok: bool | None = None

    @property
    def links(self) -> bool:
        """Whether placing has been making hard links (known after the first placement)."""
        return self.mode == "hardlink" and bool(self.hardlink_ok)

    @property
    def would_link(self) -> bool:
        """Whether placing is to make hard links (asked for, and not yet found impossible)."""
        return self.mode == "hardlink" and self.hardlink_ok is not False

    def place(self, source: Path | str, dest: Path | str, new: bool = False) -> os.stat_result | None:
        """Put ``source``'s bytes at ``dest`` atomically (replacing what is there); returns the
        new file's stat when it is a file of its own (a copy or a reflink: a rename keeps it), so
        that the caller need not stat it again, and None for a hard link. ``new``: ``dest`` is
        in a directory nobody sees until it is complete, and is made there under its own name."""
        if self.hardlink_ok and self.mode == "hardlink":
            try:
                os.link(source, dest)  # a new name appears whole: no temp file needed
                return None
            except FileExistsError:
                pass
        target = dest if new else temp_beside(dest)
        try:
            st = self._clone(source, target)
            if not new:
                os.replace(target, dest)
        except BaseException:
            remove_if_present(target)
            raise
        return st

    def _clone(self, source: Path | str, temp: Path | str) -> os.stat_result | None:
        if self.mode == "reflink" or (self.mode == "auto" and self.reflink_ok is not False):
            if self._reflink(source, temp):
                return None
            if self.mode == "reflink":  # asked for: every placement is a reflink or an error
                raise OSError(f"this filesystem cannot reflink {source} to {temp}: "
                              "set REGISTRY_LINK_MODE=auto or copy")
        if self.mode == "hardlink" and self.hardlink_ok is not False:
            try:
                os.link(source, temp)
                self.hardlink_ok = True
                return None
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                self.hardlink_ok = False  # another filesystem: fall back to copying
        return copy_file(source, temp)

    def copies_into(self, directory: Path, scratch: Path) -> bool:
        """Whether placing into ``directory`` copies bytes (no reflink, no hardlink); a reflink is
        tried once, from a file in ``scratch``, to find out."""
        if self.mode == "copy":
            return True
        if self.mode == "hardlink":
            return self.hardlink_ok is False
        if self.reflink_ok is None:
            scratch.mkdir(parents=True, exist_ok=True)
            probe = scratch / f".{uuid.uuid4().hex}.probe"
            probe.write_bytes(b"r")
            clone = directory / f".{uuid.uuid4().hex}.probe"
            try:
                self._reflink(probe, clone)
            finally:
                probe.unlink(missing_ok=True)
                clone.unlink(missing_ok=True)
        return self.mode == "auto" and not self.reflink_ok

    def _reflink(self, source: Path | str, temp: Path | str) -> bool:
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        except OSError:
            remove_if_present(temp)
            self.reflink_ok = False
            return False
        self.reflink_ok = True
        return True


def copy_file(source: Path | str, dest: Path | str) -> os.stat_result:
    """Copy ``source`` to a new file ``dest`` inside the kernel (``copy_file_range``); returns
    the new file's stat, taken before it is closed (a download records it: one lookup fewer).

    Half the CPU of ``shutil.copyfile`` for thousands of small files, which a download places.
    """
    src = os.open(source, os.O_RDONLY)
    try:
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            left = os.fstat(src).st_size
            while left > 0:
                try:
                    copied = os.copy_file_range(src, dst, left)
                except OSError as e:  # e.g. across filesystems on old kernels: copy through user space
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    with open(src, "rb", closefd=False) as reader, open(dst, "wb", closefd=False) as writer:
                        shutil.copyfileobj(reader, writer, 1 << 20)
                    break
                if copied == 0:
                    break
                left -= copied
            return os.fstat(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
