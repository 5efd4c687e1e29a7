"""LFTF (locate, then fine-tune): the paper's method, with FPFT and the ablations as presets
of the same config."""

from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.method import apply
from lftf_train.registry import ReportRow, register_method


def _tuned(s, axis) -> dict:
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
    ReportRow("LFTF (dev-tuned)", _tuned),
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

register_method(
    "lftf",
    LFTFConfig,
    apply,
    help="LFTF: locate the blocks most tied to the bias (BMI), then fine-tune only those with "
    "L = -sum over groups of log P(group|p); saves a PEFT adapter. `run` also evaluates "
    "with lm-eval before and after",
    rows=ROWS,
    axis_rows=_without_group,
    aliases=("finetune", "run"),
)

__all__ = ["LFTFConfig", "apply"]
