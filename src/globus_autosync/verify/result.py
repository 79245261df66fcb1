"""What an audit of one job's destination found (``verify``, and the scheduled audit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from globus_autosync.store import Audit

SHOWN = 50  # problems listed, then a count


@dataclass
class JobAudit:
    """What an audit of one job found."""

    job: str
    confirmed: int = 0
    present: int = 0
    missing: int = 0
    different: int = 0
    unknown: int = 0  # files at the destination the store does not hold: counted only
    requeued: int = 0
    lost: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what)
    error: str | None = None  # the destination could not be listed: nothing else is said
    repaired: bool = False  # what was wrong is queued again or recorded as lost

    @property
    def bad(self) -> bool:
        return bool(self.missing or self.different)

    def remembered(self, finished: float) -> Audit:
        """The audit as the store keeps it: what is still wrong (none once repaired), for
        status, the health and the metrics."""
        left = not self.repaired
        return Audit(
            finished,
            self.confirmed,
            self.missing if left else 0,
            self.different if left else 0,
            self.error,
        )

    def line(self) -> str:
        if self.error is not None:
            return f"{self.job}: audit failed: {self.error}"
        text = (
            f"{self.job}: {self.confirmed:,} confirmed, {self.present:,} at the destination, "
            f"{self.missing:,} missing, {self.different:,} different (size or mtime), "
            f"{self.unknown:,} unknown there (not ours, counted only)"
        )
        if self.requeued or self.lost:
            text += f"; {self.requeued:,} queued to be sent again, {self.lost:,} lost"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "confirmed": self.confirmed,
            "present": self.present,
            "missing": self.missing,
            "different": self.different,
            "unknown": self.unknown,
            "requeued": self.requeued,
            "lost": self.lost,
            "problems": [{"path": p, "what": w} for p, w in self.problems],
            "error": self.error,
        }
