"""LFTF's part of `lftf-train report`: its rows (the paper's defaults, dev-tuned, our loss
options, FPFT, the ablations), the options they read and the prose about them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lftf_train.config import Checks, option
from lftf_train.registry import ReportPart, ReportRow

GROUP = "report: LFTF rows"


@dataclass
class LFTFReportOptions(Checks):
    """The settings of the report's LFTF rows (flags of `lftf-train report`)."""

    tuned_lr: float = option(
        1e-4,
        "learning rate of the 'dev-tuned' LFTF row and the ablations (chosen for SmolLM2 by "
        "`lftf-train sweep`)",
        group=GROUP,
    )
    tuned_epochs: int = option(7, "epochs of those rows", group=GROUP)
    transfer_lr: float = option(
        1e-4,
        "learning rate of the 'LFTF (split + KL + anchors)' row: our loss options, beside the "
        "paper's (bench/transfer_check.py compares them on the dev tasks)",
        group=GROUP,
    )
    transfer_epochs: int = option(7, "epochs of that row", group=GROUP)
    transfer_kl: float = option(1.0, "its KL weight (--kl-weight)", group=GROUP)
    transfer_anchor: float = option(1.0, "its anchor weight (--anchor-weight)", group=GROUP)
    fpft_lr: float | None = option(None, "FPFT learning rate (default: --tuned-lr)", group=GROUP)
    fpft_epochs: int = option(1, "FPFT epochs", group=GROUP)

    def __post_init__(self) -> None:
        self._above_zero("tuned_lr", "transfer_lr")
        self._positive("tuned_epochs", "transfer_epochs", "fpft_epochs")
        self._non_negative("transfer_kl", "transfer_anchor")
        if self.fpft_lr is not None:
            self._above_zero("fpft_lr")


def _tuned(s: LFTFReportOptions, axis) -> dict:
    return {"lr": s.tuned_lr, "epochs": s.tuned_epochs, "select": "last"}


def _without_group(axis) -> list[ReportRow]:
    """One ablation row per group: its loss term dropped ("w/o he" keeps -log P(she))."""
    return [
        ReportRow(
            f"w/o {g}",
            lambda s, axis, g=g: {**_tuned(s, axis), "terms": [t for t in axis.labels if t != g]},
            table="ablation",
        )
        for g in axis.labels
    ]


ROWS = (
    ReportRow("LFTF (paper defaults)", {"lr": 1e-5, "epochs": 2, "select": "last"}),
    ReportRow("LFTF (dev-tuned)", _tuned, reference=True, in_figures=True),
    ReportRow(
        "LFTF (split + KL + anchors)",
        lambda s, axis: {
            "lr": s.transfer_lr,
            "epochs": s.transfer_epochs,
            "select": "last",
            "loss": "split",
            "kl_weight": s.transfer_kl,
            "anchor_weight": s.transfer_anchor,
        },
        in_figures=True,
    ),
    ReportRow(
        "FPFT",
        lambda s, axis: {
            **_tuned(s, axis),
            "blocks": "all",
            "lr": s.fpft_lr or s.tuned_lr,
            "epochs": s.fpft_epochs,
        },
    ),
    ReportRow("w/o ATT", lambda s, axis: {**_tuned(s, axis), "modules": ["mlp"]}, "ablation"),
    ReportRow("w/o MLP", lambda s, axis: {**_tuned(s, axis), "modules": ["attn"]}, "ablation"),
)
HERE = Path(__file__).parent
REPORT = ReportPart(
    options=LFTFReportOptions,
    texts={"main": HERE / "report_main.md.j2", "ablation": HERE / "report_ablation.md.j2"},
)
