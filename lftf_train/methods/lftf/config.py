"""LFTFConfig: what LFTF locates, which parameters it trains, and how (PEFT-style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lftf_train.config import LocateConfig, _csv, option
from lftf_train.data import ANCHOR_TEMPLATES

MODULE_CHOICES = ("attn", "mlp")
METHOD_CHOICES = ("full", "lora")
SELECT_CHOICES = ("last", "best_dev")
LOSS_CHOICES = ("nll", "split")
TRAIN = "fine-tuning"


@dataclass
class LFTFConfig(LocateConfig):
    """What to locate, which parameters to train, and how. FPFT is ``blocks='all'``; the
    paper's ablations are ``modules`` (w/o ATT, w/o MLP) and ``terms`` (w/o he, w/o she)."""

    method: str = option(
        "full",
        "'full': every weight of the chosen blocks (the paper). 'lora': PEFT LoRA restricted "
        "to those blocks (for big models).",
        choices=METHOD_CHOICES,
        group=TRAIN,
    )
    blocks: Any = option(
        "auto",
        "'auto' (the num_blocks blocks with the highest BMI), 'all' (every block: the FPFT "
        "baseline), or block indices such as '29' or '3,10' (0-based).",
        group=TRAIN,
    )
    num_blocks: int = option(1, "With blocks='auto': how many top blocks.", group=TRAIN)
    modules: Any = option(
        MODULE_CHOICES,
        "Parts of each block to train: 'attn' (self-attention and its input norm), 'mlp' "
        "(MLP and its norm), or both (the whole block). Ablations: w/o MLP = attn, "
        "w/o ATT = mlp.",
        group=TRAIN,
    )
    terms: Any = option(
        None,
        "Loss terms, by group label: L = mean over prompts of the sum of -log P(group|p). "
        "Default: every group of the axis ('he,she' for gender: LFTF); 'he' or 'she' alone "
        "are the w/o-she / w/o-he ablations.",
        group=TRAIN,
    )
    loss: str = option(
        "nll",
        "'nll': the paper's -sum over groups of log P(group|p), minimal when the groups share "
        "all the next-token mass evenly. 'split': -mean over groups of log P(group | one of the "
        "groups), minimal at an even split whatever the groups' mass (ours; with kl_weight it "
        "trains the split alone).",
        choices=LOSS_CHOICES,
        group=TRAIN,
    )
    kl_weight: float = option(
        0.0,
        "Weight of KL(original || trained) of the next-token distribution with the groups' "
        "words merged into one outcome: keeps the groups' total mass and every other token "
        "where the original had them (0: no KL term, the paper).",
        group=TRAIN,
    )
    anchor_weight: float = option(
        0.0,
        "Weight of KL(original || trained) of the whole next-token distribution on hinted "
        "prompts of training-only templates ('The {profession} packed his bag because'): "
        "keeps hint following where the gender is given (0: none, the paper).",
        group=TRAIN,
    )
    lr: float = option(1e-5, "Adam learning rate (paper: 1e-5).", group=TRAIN)
    epochs: int = option(2, "Passes over GenBiasEval-train (paper: 2).", group=TRAIN)
    batch_size: int = option(32, "Prompts per step (paper: 32).", group=TRAIN)
    weight_decay: float = option(0.0, "Adam weight decay.", group=TRAIN)
    max_grad_norm: float | None = option(
        None, "Clip the gradient norm to this value (None: no clip).", group=TRAIN
    )
    select: str = option(
        "last",
        "'last': keep the weights after the last epoch (the paper). 'best_dev': keep the epoch "
        "with the lowest dev bias (GenBiasEval-dev AFGB for gender) among those whose dev hint "
        "score (GenHintEval-dev UB) keeps min_ub_ratio of the original (early stopping).",
        choices=SELECT_CHOICES,
        group=TRAIN,
    )
    min_ub_ratio: float = option(
        0.8,
        "With select='best_dev': an epoch counts only if its dev hint score (UB for gender) is "
        "at least this fraction of the untrained model's (0: no guard).",
        group=TRAIN,
    )
    patience: int | None = option(
        None,
        "With select='best_dev': stop after this many epochs without a new best.",
        group=TRAIN,
    )
    naive: bool = option(
        False,
        "A full forward per step instead of the cached prefix (same losses, slower; for "
        "checking and benchmarks).",
        group=TRAIN,
    )
    lora_r: int = option(16, "LoRA rank (method='lora').", group=TRAIN)
    lora_alpha: int = option(32, "LoRA alpha (method='lora').", group=TRAIN)
    lora_dropout: float = option(0.0, "LoRA dropout (method='lora').", group=TRAIN)

    def __post_init__(self) -> None:
        super().__post_init__()
        modules = _csv(self.modules)
        if not modules or any(m not in MODULE_CHOICES for m in modules):
            self._fail("modules", f"choose one or both of {MODULE_CHOICES}, got {self.modules!r}")
        self.modules = sorted(set(modules), key=MODULE_CHOICES.index)
        labels = self.load_axis().labels
        terms = labels if self.terms is None else _csv(self.terms)
        if not terms or any(t not in labels for t in terms):
            self._fail("terms", f"choose groups of the axis among {labels}, got {self.terms!r}")
        self.terms = sorted(set(terms), key=labels.index)
        self.blocks = self._parse_blocks(self.blocks)
        self._positive("num_blocks", "epochs", "batch_size", "lora_r", "lora_alpha")
        self._above_zero("lr")
        self._non_negative("kl_weight", "anchor_weight", "weight_decay", "lora_dropout")
        if self.max_grad_norm is not None:
            self._above_zero("max_grad_norm")
        if self.patience is not None:
            self._positive("patience")
        if not self.lora_dropout < 1:
            self._fail("lora_dropout", f"a probability below 1, got {self.lora_dropout!r}")
        if self.anchor_weight > 0 and self.load_axis().name not in ANCHOR_TEMPLATES:
            self._fail("anchor_weight", f"no anchor templates for the axis {self.axis!r}")
        self._non_negative("min_ub_ratio")
        if self.patience is not None and self.select != "best_dev":
            self._fail("patience", "early stopping needs select='best_dev'")

    def _parse_blocks(self, blocks: Any) -> Any:
        if blocks in ("auto", "all"):
            return blocks
        try:
            indices = [int(b) for b in _csv(blocks if not isinstance(blocks, int) else [blocks])]
        except (TypeError, ValueError):
            self._fail(
                "blocks", f"'auto', 'all' or block indices like '29' or '3,10'; got {blocks!r}"
            )
        if not indices or any(i < 0 for i in indices):
            self._fail("blocks", f"block indices are 0-based and non-negative; got {blocks!r}")
        return sorted(set(indices))
