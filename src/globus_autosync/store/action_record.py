"""What the actions of a batch's confirmed files record when the batch is resolved: data the
cycle hands the store, which writes it in the transaction that confirms the files. Apart from
``actions`` so that a run without actions does not define it (0.6 ms of start-up)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from globus_autosync.store.actions import ConfirmedFile


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """What the actions of a batch's confirmed files record, in the transaction that confirms
    them: one action for the batch (``per_batch``), else the files added to the datasets of
    their directories (``dir_paths``: those directories' paths; ``marker``: the pattern of a
    file that finishes a dataset)."""

    files: Sequence[ConfirmedFile]
    per_batch: bool
    legs: tuple[bool, bool]  # a flow run, a command
    marker: str | None
    dir_paths: Mapping[int, str]
