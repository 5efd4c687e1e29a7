"""The knowledge editors of the paper's Table 3 (ROME, R-ROME, MEMIT, MEND), one method with
an editor table (``editors.EDITORS``): each edits MLP weights one train request after
another."""

import functools

from lftf_train.methods.edit.config import EditConfig
from lftf_train.methods.edit.editors import EDITORS
from lftf_train.methods.edit.method import apply
from lftf_train.methods.edit.report import REPORT
from lftf_train.registry import ReportRow, register_method


def _row(editor: str, options, axis) -> dict:
    """A report row's overrides: the editor, the report's --edit-limit (and --mend-steps)."""
    steps = options.mend_steps if editor == "mend" else None
    return {"editor": editor, "edits": options.edit_limit} | (
        {"mend_steps": steps} if steps else {}
    )


register_method(
    "edit",
    EditConfig,
    apply,
    help="a knowledge editor (" + ", ".join(e.label for e in EDITORS.values()) + ") applied "
    "to the axis's train requests, one edit after another, as the paper's Table 3; saves a "
    "PEFT adapter and edits.json",
    rows=tuple(ReportRow(e.label, functools.partial(_row, name)) for name, e in EDITORS.items()),
    report=REPORT,
)

__all__ = ["EDITORS", "EditConfig", "apply"]
