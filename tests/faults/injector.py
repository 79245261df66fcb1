"""libfiu (Debian's fiu-utils) as the fault injector: chosen libc calls of a child process fail
at random, with a chosen errno, reproducibly for a given seed (FIU_PRNG_SEED).

Why libfiu and not a hook in Python: its preload library sits under everything the tool writes
with, SQLite's C code and the io module's buffered files (the log) included, which a Python-level
hook would not reach.
"""

from __future__ import annotations

import errno
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

PRELOAD = Path("/usr/lib/fiu/fiu_posix_preload.so")

# The calls that write, and the errors the C library documents for them on a local or network
# file system. open(2) is left out: it also reads the Python installation (lazy imports), and
# an interpreter that cannot read itself is not what this suite is about.
POINTS: dict[str, tuple[int, ...]] = {
    "posix/io/rw/write": (
        errno.EIO,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EBADF,
        errno.EFBIG,
        errno.ESTALE,  # a network share's: its file handle went stale
        errno.ENOTCONN,  # its server went away (a FUSE or CIFS mount)
    ),
    "posix/io/rw/pwrite": (errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EBADF, errno.ESTALE),
    "posix/io/sync/fsync": (
        errno.EIO,
        errno.ENOSPC,
        errno.EROFS,
        errno.EBADF,
        errno.EINVAL,
        errno.ESTALE,
        errno.ENOTCONN,
    ),
    "posix/io/sync/fdatasync": (errno.EIO, errno.ENOSPC, errno.EROFS),
    "posix/io/dir/rename": (
        errno.EIO,
        errno.ENOSPC,
        errno.EROFS,
        errno.EACCES,
        errno.EBUSY,
        errno.EPERM,
    ),
    "posix/io/dir/unlink": (
        errno.EIO,
        errno.EROFS,
        errno.EACCES,
        errno.EBUSY,
        errno.EPERM,
        errno.ESTALE,
        errno.ENOTCONN,
    ),
    "posix/io/rw/ftruncate": (errno.EIO, errno.EROFS, errno.EBADF, errno.EPERM, errno.EINVAL),
}
PROBABILITIES = (0.005, 0.02, 0.05, 0.2)


def missing() -> str | None:
    """Why the injector cannot run here, or None if it can."""
    if shutil.which("fiu-run") is None:
        return "fiu-run not found (apt-get install fiu-utils)"
    if not PRELOAD.exists():
        return f"{PRELOAD} not found (apt-get install fiu-utils)"
    return None


@dataclass(frozen=True)
class Fault:
    point: str
    probability: float
    errno: int

    def command(self) -> str:
        return (
            f"enable_random name={self.point},probability={self.probability},failinfo={self.errno}"
        )

    def __str__(self) -> str:
        return f"{self.point} p={self.probability} {errno.errorcode[self.errno]}"


@dataclass(frozen=True)
class FaultPlan:
    """The faults of one child process, and the seed of libfiu's choices."""

    faults: tuple[Fault, ...]
    seed: int

    @classmethod
    def draw(cls, rng: random.Random) -> FaultPlan:
        """One to three failure points, each with its probability and errno."""
        points = rng.sample(sorted(POINTS), rng.randint(1, 3))
        faults = tuple(Fault(p, rng.choice(PROBABILITIES), rng.choice(POINTS[p])) for p in points)
        return cls(faults, rng.randrange(1, 2**31))

    def prefix(self) -> list[str]:
        """The command prefix that runs a program under these faults."""
        argv = ["fiu-run", "-x", "-f", ""]
        for fault in self.faults:
            argv += ["-c", fault.command()]
        return argv

    def environ(self) -> dict[str, str]:
        return {"FIU_PRNG_SEED": str(self.seed)}

    def __str__(self) -> str:
        return f"seed {self.seed}: " + ", ".join(str(f) for f in self.faults)
