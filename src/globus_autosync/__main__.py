from __future__ import annotations

from globus_autosync.cli import main

main()
