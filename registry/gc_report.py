"""What a gc pass did (or, dry, would do): shared by the blob and the pack collectors."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    """Bytes the store holds fewer afterwards: deleted objects, less what repacking wrote
    (the new packs' 104 bytes of trailers aside)."""
    kept_young: int = 0
    kept_in_flight: int = 0
    referenced: int = 0
    repacked: list[str] = field(default_factory=list)
    """Mostly-dead packs whose live chunks were (dry: would be) copied into new packs, then deleted."""
    rewritten_bytes: int = 0
    """Live chunk bytes copied out of the repacked packs."""
    new_packs: list[str] = field(default_factory=list)
    """The packs repacking wrote (none in a dry run)."""
    index_sets_written: list[str] = field(default_factory=list)
    index_sets_deleted: list[str] = field(default_factory=list)
    """Index sets (``index_sets``) written and replaced (dry: that would be)."""
    dry_run: bool = False

    def keeps(self, *, live: bool, age: float, grace_seconds: float, in_flight: bool) -> bool:
        """Whether an object (a blob, a pack) stays, counting why; False: it is garbage."""
        if live:
            self.referenced += 1
        elif age < grace_seconds:
            self.kept_young += 1
        elif in_flight:
            self.kept_in_flight += 1
        else:
            return False
        return True
