"""The knowledge editors of the paper's Table 3 (ROME, R-ROME, MEMIT), one method with an
editor table (``editors.EDITORS``): each edits MLP down-projections one train request after
another."""

from lftf_train.methods.edit.config import EditConfig
from lftf_train.methods.edit.editors import EDITORS
from lftf_train.methods.edit.method import apply
from lftf_train.registry import ReportRow, register_method

MEND_NOT_RUN = (
    "not run: MEND edits through a hypernetwork trained on an editing dataset (ZsRE) for "
    "each model; neither the dataset nor a trained MEND for this model is available offline"
)

register_method(
    "edit",
    EditConfig,
    apply,
    help="a knowledge editor (" + ", ".join(e.label for e in EDITORS.values()) + ") applied "
    "to the axis's train requests, one edit after another, as the paper's Table 3; saves a "
    "PEFT adapter and edits.json",
    rows=(
        *[
            ReportRow(e.label, lambda s, axis, name=name: {"editor": name, "edits": s.edit_limit})
            for name, e in EDITORS.items()
        ],
        ReportRow("MEND", not_run=MEND_NOT_RUN),
    ),
)

__all__ = ["EDITORS", "EditConfig", "apply"]
