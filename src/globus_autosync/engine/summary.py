"""What one cycle of one job did, in numbers and in the one line ``run`` prints and logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from globus_autosync.config.units import human_bytes
from globus_autosync.errors import EXIT_OK, EXIT_PARTIAL, AuthError


@dataclass
class Summary:
    job: str
    dry_run: bool = False
    full: bool = False
    scanned: int = 0  # files in the directories listed
    dirs: int = 0  # directories looked at (stat'ed)
    listed: int = 0  # of them, those listed: changed, new, or holding work in progress
    changed: int = 0
    settling: int = 0  # files seen, waiting to stop changing (settle)
    queued: int = 0  # settled files waiting for a batch (its window, a free task slot)
    window: tuple[int, float] | None = None  # files waiting for the batch window, when it ends
    sent_files: int = 0
    sent_bytes: int = 0
    confirmed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    in_flight: int = 0
    waiting: int = 0  # tasks in flight that wait for someone (INACTIVE: expired credentials)
    collections_down: int = 0  # Globus Connect Personal not connected or paused (endpoints.py)
    problem: str | None = None  # the transport could not be reached; work stays queued
    would_send: list[str] = field(default_factory=list)
    deleted: int = 0  # source files deleted by cleanup
    deleted_bytes: int = 0
    delete_failed: int = 0  # deletions that failed (also counted in ``failed``)
    would_delete: list[str] = field(default_factory=list)
    actions_started: int = 0  # flow runs and commands started (actions.py)
    actions_failed: int = 0
    action_error: AuthError | None = None  # a flow's login or consent is missing (run: exit 3)

    @property
    def exit_code(self) -> int:
        bad = (
            self.failed
            or self.skipped
            or self.waiting
            or self.problem
            or self.collections_down
            or self.actions_failed
            or self.action_error
        )
        return EXIT_PARTIAL if bad else EXIT_OK

    @property
    def result(self) -> str:
        """For the ``runs`` table: ok, partial, or unavailable (the transport could not be
        reached: health counts it as a cycle that could not run)."""
        if self.exit_code == EXIT_OK:
            return "ok"
        return "unavailable" if self.problem else "partial"

    @property
    def record(self) -> str:
        """What the ``runs`` table keeps: the summary line, and why the transport was out of
        reach (health's reason for a job failing so)."""
        return f"{self.line()}: {self.problem}" if self.problem else self.line()

    @property
    def quiet(self) -> bool:
        """Nothing happened worth more than the summary."""
        return not (
            self.changed
            or self.sent_files
            or self.confirmed
            or self.failed
            or self.skipped
            or self.deleted
            or self.actions_started
            or self.actions_failed
        )

    def line(self) -> str:
        what = "would send" if self.dry_run else "sent"
        if self.full:
            where = f" in {self.dirs} directories (full)"
        else:  # incremental: only the directories that changed are listed
            plural = "y" if self.listed == 1 else "ies"
            where = f" in {self.listed} changed director{plural} of {self.dirs}"
        text = (
            f"{self.job}{' (dry run)' if self.dry_run else ''}: "
            f"scanned {self.scanned} files{where}, {self.changed} new or changed, "
        )
        if self.settling:
            text += f"{self.settling} waiting to settle, "
        if self.queued:
            text += f"{self.queued} queued, "
        text += (
            f"{what} {self.sent_files} ({human_bytes(self.sent_bytes)}), "
            f"confirmed {self.confirmed}, "
        )
        if self.deleted:
            text += f"deleted {self.deleted} ({human_bytes(self.deleted_bytes)}), "
        text += f"failed {self.failed}"
        if self.delete_failed:
            text += f" ({self.delete_failed} deletions)"
        text += f", skipped {self.skipped}"
        if self.in_flight:
            text += f", {self.in_flight} in flight"
        if self.actions_started or self.actions_failed:
            text += f", actions started {self.actions_started}, failed {self.actions_failed}"
        if self.waiting:
            text += (
                f", {self.waiting} task{'s' if self.waiting > 1 else ''} waiting for you (status)"
            )
        if self.collections_down:
            text += ", a collection is not connected (status)"
        if self.problem:
            text += ", work left queued: transport unavailable"
        return f"{text}, {self.seconds:.2f} s"
