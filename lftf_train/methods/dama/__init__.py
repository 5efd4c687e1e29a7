"""DAMA (Limisiewicz et al., ICLR 2024), the paper's strongest baseline: project the
directions that carry the axis's words out of the MLPs' down-projections."""

from dataclasses import dataclass
from pathlib import Path

from lftf_train.config import Checks, _csv, option
from lftf_train.methods.dama.config import DAMA_RANKS, DAMAConfig
from lftf_train.methods.dama.method import apply
from lftf_train.registry import ReportPart, ReportRow, register_method

GROUP = "report: DAMA row"


@dataclass
class DAMAReportOptions(Checks):
    """The report's DAMA row (flags of `lftf-train report`)."""

    dama_layers: str = option(
        "auto", "blocks of the DAMA row (auto: 19-27 on SmolLM2's 30 blocks)", group=GROUP
    )
    dama_ranks: object = option(
        DAMA_RANKS,
        "rank of the DAMA row; several are chosen among on dev (what `lftf-train dama` chose "
        "for SmolLM2)",
        group=GROUP,
    )

    def __post_init__(self) -> None:
        self.dama_ranks = [int(r) for r in _csv(self.dama_ranks)]
        if not self.dama_ranks or min(self.dama_ranks) < 1:
            self._fail("dama_ranks", "projection ranks of 1 or more, e.g. '8' or '8,16,32'")


register_method(
    "dama",
    DAMAConfig,
    apply,
    help="the DAMA baseline (Limisiewicz et al. 2024): project the axis's directions out of "
    "the MLPs; rank and blocks chosen on the dev splits; saves a PEFT adapter",
    rows=(ReportRow("DAMA", lambda s, axis: {"layers": s.dama_layers, "ranks": s.dama_ranks}),),
    report=ReportPart(
        options=DAMAReportOptions, texts={"main": Path(__file__).with_name("report.md.j2")}
    ),
)

__all__ = ["DAMA_RANKS", "DAMAConfig", "DAMAReportOptions", "apply"]
