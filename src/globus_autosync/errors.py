"""One exception tree. Each class knows the exit code it ends the process with."""

from __future__ import annotations

# Exit codes (documented in docs/troubleshooting.md).
EXIT_OK = 0
EXIT_PARTIAL = 1  # the run finished, but some files failed or were skipped
EXIT_USAGE = 2  # usage or configuration error
EXIT_JOB = 3  # a job could not run (source missing, destination not writable, store unusable)
EXIT_HUNG = 4  # a job's cycle made no progress for hang_after (a share or service not answering)
EXIT_LOCKED = 75  # another run of the same job holds its lock (EX_TEMPFAIL)


class AutosyncError(Exception):
    """Base of every error a user can cause or meet; ``str(err)`` is one line saying what to do."""

    exit_code = EXIT_JOB


class ConfigError(AutosyncError):
    """The configuration file is missing, malformed or invalid."""

    exit_code = EXIT_USAGE


class UsageError(AutosyncError):
    """The command line asks for something that cannot be done (an unknown job, a bad time)."""

    exit_code = EXIT_USAGE


class JobError(AutosyncError):
    """A job could not run at all: its source, destination or the store is unusable."""

    exit_code = EXIT_JOB


class WorkerError(JobError):
    """A directory-listing worker process died, or failed, while listing a directory."""


class StoreError(JobError):
    """The state database cannot be opened or is not one this version understands."""


class Hung(JobError):
    """A job's cycle made no progress for ``hang_after``: blocked on a share or a service that
    does not answer. ``run`` leaves it behind, runs the other jobs and ends with this code."""

    exit_code = EXIT_HUNG


class Unmounted(JobError):
    """A job's root is not on the file system it was on (a share that is not mounted): the
    cycle does nothing."""


class LockHeld(AutosyncError):
    """Another process is running the same job."""

    exit_code = EXIT_LOCKED


class TransportError(JobError):
    """The transport cannot take or report work now; unsent work stays queued for the next cycle."""


class Refused(TransportError):
    """The service refused a request for good (a 4xx other than a login's or a pace's): asking
    again the same way will not help. The batch it was for fails, its reason starting with
    ``REFUSED``; the job goes on with its other batches."""


REFUSED = "refused: "  # the reason of a batch the service refused (health reads it)


class AuthError(JobError):
    """Credentials are missing, expired or lack a consent; the message names the fix."""


def job_line(err: AutosyncError, job: str) -> str:
    """The error's line, naming the job when it does not already."""
    text = str(err)
    if text.startswith((f"{job}:", f"job {job!r}")):
        return text
    return f"job {job!r}: {text}"


def os_error(err: OSError, job: str | None = None) -> JobError:
    """An OSError that no narrower handler turned into a message (a disk failing where the tool
    keeps its own files) as the one line of a job that could not run: the file and the error."""
    where = f"job {job!r}: " if job else ""
    path = f"{err.filename}: " if err.filename else ""
    return JobError(
        f"{where}{path}{err.strerror or err}; check that disk (free space, health, "
        "permissions), then run again"
    )
