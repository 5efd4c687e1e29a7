"""The knowledge editors' part of `lftf-train report`: the options of their rows, the prose
about them and the figure of their edits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lftf_train.config import Checks, option, train_requests
from lftf_train.methods.edit.plots import plot_edit_trajectory
from lftf_train.records import slug
from lftf_train.registry import ReportPart

GROUP = "report: editor rows"


@dataclass
class EditReportOptions(Checks):
    """The report's editor rows (flags of `lftf-train report`)."""

    edit_limit: int = option(
        6,
        "sequential edits of each knowledge-editor row, 1..943 (CPU-sized; `lftf-train edit` "
        "runs all 943); not --limit, which is lm-eval's docs per task",
        group=GROUP,
    )
    mend_steps: int | None = option(
        None,
        "training edits of the MEND row's editor network (default: `lftf-train edit`'s); a "
        "trained editor is cached and reused",
        group=GROUP,
    )

    def __post_init__(self) -> None:
        if self.mend_steps is not None:
            self._positive("mend_steps")

    def check(self, axis) -> None:
        """Counts drawn from the axis's train split: 1..its size (943 for gender)."""
        n = train_requests(axis)
        why = f"the {axis.name} axis's train split has {n} requests; give 1..{n}"
        self._count("edit_limit", n, why)


def draw_edits(rows: dict, folder: Path, info: dict, footer: str) -> None:
    """edits.png: P(target) along each editor row's sequence of edits."""
    edits = {
        name: json.loads((folder / "rows" / slug(name) / "edits.json").read_text())["edits"]
        for name in rows
    }
    if edits:
        plot_edit_trajectory(
            edits, folder / "edits.png", title=f"Sequential edits: {info['model']}", footer=footer
        )


REPORT = ReportPart(
    options=EditReportOptions,
    texts={"main": Path(__file__).with_name("report.md.j2")},
    figures=draw_edits,
)
