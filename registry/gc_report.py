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
