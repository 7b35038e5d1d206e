"""What a gc pass did (or, dry, would do): shared by the blob and the pack collectors."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_young: int = 0
    kept_in_flight: int = 0
    referenced: int = 0
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
