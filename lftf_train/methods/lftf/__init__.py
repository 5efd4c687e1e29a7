"""LFTF (locate, then fine-tune): the paper's method, with FPFT and the ablations as presets
of the same config."""

from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.method import apply
from lftf_train.methods.lftf.report import REPORT, ROWS, _without_group
from lftf_train.registry import register_method

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
    report=REPORT,
)

__all__ = ["LFTFConfig", "apply"]
