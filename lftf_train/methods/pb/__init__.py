"""PB: the prompt-based baseline. It changes no weight: its output is the instruction, and
lm-eval applies it with ``--system_instruction``."""

from dataclasses import dataclass
from pathlib import Path

from lftf_train.config import Checks, option
from lftf_train.methods.pb.config import PB_INSTRUCTION, PBConfig
from lftf_train.registry import Adapted, Context, ReportPart, ReportRow, register_method


@dataclass
class PBReportOptions(Checks):
    """The report's PB row (a flag of `lftf-train report`)."""

    pb_instruction: str = option(
        PB_INSTRUCTION, "the PB baseline's instruction", group="report: PB row"
    )


def apply(model, tokenizer, config: PBConfig, context: Context) -> Adapted:
    """The model as it is, with the instruction lm-eval puts before every prompt."""
    return Adapted(
        model=model,
        details={"instruction": config.instruction},
        settings=config.instruction,
        system_instruction=config.instruction,
    )


register_method(
    "pb",
    PBConfig,
    apply,
    help="the prompt-based baseline (PB): an instruction before every prompt, through "
    "lm-eval's system_instruction; saves the config and how to evaluate it",
    rows=(ReportRow("PB", lambda s, axis: {"instruction": s.pb_instruction}),),
    report=ReportPart(
        options=PBReportOptions, texts={"main": Path(__file__).with_name("report.md.j2")}
    ),
)

__all__ = ["PB_INSTRUCTION", "PBConfig", "apply"]
