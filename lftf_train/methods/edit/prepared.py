"""What an editor computes once, before its sequence of edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Prepared:
    """``state``: what every edit takes (ROME/MEMIT: the keys' second moments or None;
    MEND: its trained network); ``record``: how it was trained (None if it was not), for
    the run's record; ``artifacts``: files it adds to the output folder
    ({name: write(folder, run_record)})."""

    state: Any = None
    record: dict | None = None
    artifacts: dict = field(default_factory=dict)
