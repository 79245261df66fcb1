"""The destination audit (``globus-autosync verify``): does the destination still hold every
file the store holds as confirmed? A directory at a time: the confirmed listing read first, then
the destination's directory listed once (local: a scan; Globus: paged ``operation_ls`` at the
job's pace), so that a file confirmed meanwhile is never "missing". ``--repair`` sends again what
the source still has; what it no longer has is lost, said, and the job ``failing``.
May import every folder below the engine, and the engine; nothing imports it but cli."""

from __future__ import annotations
