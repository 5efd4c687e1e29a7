"""DAMA (Limisiewicz et al., ICLR 2024), the paper's strongest baseline: project the
directions that carry the axis's words out of the MLPs' down-projections."""

from lftf_train.methods.dama.config import DAMA_RANKS, DAMAConfig
from lftf_train.methods.dama.method import apply
from lftf_train.registry import ReportRow, register_method

register_method(
    "dama",
    DAMAConfig,
    apply,
    help="the DAMA baseline (Limisiewicz et al. 2024): project the axis's directions out of "
    "the MLPs; rank and blocks chosen on the dev splits; saves a PEFT adapter",
    rows=(ReportRow("DAMA", lambda s, axis: {"layers": s.dama_layers, "ranks": s.dama_ranks}),),
)

__all__ = ["DAMA_RANKS", "DAMAConfig", "apply"]
