"""Method configs as declarative dataclasses: ``RunConfig`` (what every method shares: the
model, the axis, the seed, ...) and ``LFTFConfig`` (what LFTF trains, and how).

In the spirit of PEFT's configs: every field has a type, a default (the paper's, where it
gives one) and a help string; ``__post_init__`` fails early and names the field. A config
is saved as JSON beside every output (``lftf_config.json`` for LFTF) and loads back with
``--config``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODULE_CHOICES = ("attn", "mlp")
METHOD_CHOICES = ("full", "lora")
BMI_SOURCES = ("hidden_states", "block_io")
LOCATORS = ("bmi", "skip")
SELECT_CHOICES = ("last", "best_dev")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _csv(value: Any) -> Any:
    """'attn,mlp' -> ['attn', 'mlp']; lists pass through."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


@dataclass
class RunConfig:
    """What every method's run needs: which model, which bias axis, seed and precision."""

    model: str = field(
        default="smollm2-135m",
        metadata={
            "help": "A local folder, a hub id, a .gguf file (converted once into the lftf "
            "cache), or 'smollm2-135m' (the embedded model)."
        },
    )
    axis: str = field(
        default="gender",
        metadata={
            "help": "The bias axis: 'gender' (GenBiasEval/GenHintEval, the paper), "
            "'religion', or a spec file of your own (YAML/JSON, see lftf_tasks/axes/)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for sampling, shuffling and init."})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype: 'auto' (the checkpoint's), 'float32' or 'bfloat16'. With "
            "16-bit weights the trained parameters are kept in float32 under autocast."
        },
    )
    eval_batch_size: int = field(default=64, metadata={"help": "Prompts per scoring forward."})
    device_map: str | None = field(
        default=None,
        metadata={
            "help": "None: the whole model on one device (the GPU if any; one per process "
            "under accelerate launch). 'auto': spread over all visible GPUs in one process, "
            "for models too big for one GPU (transformers' device_map)."
        },
    )

    def __post_init__(self) -> None:
        try:
            self.load_axis()
        except ValueError as err:
            self._fail("axis", str(err))
        if self.dtype not in DTYPES:
            self._fail("dtype", f"choose from {DTYPES}, got {self.dtype!r}")
        if not isinstance(self.eval_batch_size, int) or self.eval_batch_size < 1:
            self._fail(
                "eval_batch_size", f"must be a positive integer, got {self.eval_batch_size!r}"
            )

    @classmethod
    def _fail(cls, name: str, why: str):
        raise ValueError(f"{cls.__name__}.{name}: {why}")

    def load_axis(self):
        from lftf_tasks.axis import load_axis

        return load_axis(self.axis)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any):
        """Load a JSON or YAML config; keyword overrides (e.g. from CLI flags) win."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{path}: unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{**values, **overrides})

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


@dataclass
class LFTFConfig(RunConfig):
    """What to locate, which parameters to train, and how."""

    method: str = field(
        default="full",
        metadata={
            "help": "'full': every weight of the chosen blocks (the paper). "
            "'lora': PEFT LoRA restricted to those blocks (for big models)."
        },
    )
    blocks: Any = field(
        default="auto",
        metadata={
            "help": "'auto' (the num_blocks blocks with the highest BMI), 'all' (every block: "
            "the FPFT baseline), or block indices such as '29' or '3,10' (0-based)."
        },
    )
    num_blocks: int = field(
        default=1, metadata={"help": "With blocks='auto': how many top blocks."}
    )
    modules: Any = field(
        default=("attn", "mlp"),
        metadata={
            "help": "Parts of each block to train: 'attn' (self-attention and its input norm), "
            "'mlp' (MLP and its norm), or both (the whole block). Ablations: w/o MLP = attn, "
            "w/o ATT = mlp."
        },
    )
    terms: Any = field(
        default=None,
        metadata={
            "help": "Loss terms, by group label: L = mean over prompts of the sum of "
            "-log P(group|p). Default: every group of the axis ('he,she' for gender: LFTF); "
            "'he' or 'she' alone are the w/o-she / w/o-he ablations."
        },
    )
    bmi_source: str = field(
        default="hidden_states",
        metadata={
            "help": "H for BMI = 1 - cos(H_i, H_i+1): 'hidden_states' (transformers' "
            "output_hidden_states; the last entry is after the final norm: the paper's "
            "ranking) or 'block_io' (each block's own input and output)."
        },
    )
    locator: str = field(
        default="bmi",
        metadata={
            "help": "How blocks='auto' ranks blocks: 'bmi' (the paper's 1 - cos(H_i, H_i+1), "
            "see bmi_source) or 'skip' (how much removing each block changes the bias on "
            "the locate prompts: a causal check; one forward pass per block)."
        },
    )
    locate_prompts: int = field(
        default=100, metadata={"help": "GenBiasEval-train prompts sampled for BMI (paper: 100)."}
    )
    lr: float = field(default=1e-5, metadata={"help": "Adam learning rate (paper: 1e-5)."})
    epochs: int = field(default=2, metadata={"help": "Passes over GenBiasEval-train (paper: 2)."})
    batch_size: int = field(default=32, metadata={"help": "Prompts per step (paper: 32)."})
    weight_decay: float = field(default=0.0, metadata={"help": "Adam weight decay."})
    max_grad_norm: float | None = field(
        default=None, metadata={"help": "Clip the gradient norm to this value (None: no clip)."}
    )
    select: str = field(
        default="last",
        metadata={
            "help": "'last': keep the weights after the last epoch (the paper). 'best_dev': "
            "keep the epoch with the lowest dev bias (GenBiasEval-dev AFGB for gender) among "
            "those whose dev hint score (GenHintEval-dev UB) keeps min_ub_ratio of the "
            "original (early stopping)."
        },
    )
    min_ub_ratio: float = field(
        default=0.8,
        metadata={
            "help": "With select='best_dev': an epoch counts only if its dev hint score (UB for "
            "gender) is at least this fraction of the untrained model's (0: no guard)."
        },
    )
    patience: int | None = field(
        default=None,
        metadata={
            "help": "With select='best_dev': stop after this many epochs without a new best."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (method='lora')."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (method='lora')."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (method='lora')."})

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
        for name, choices in (
            ("method", METHOD_CHOICES),
            ("bmi_source", BMI_SOURCES),
            ("locator", LOCATORS),
            ("select", SELECT_CHOICES),
        ):
            if getattr(self, name) not in choices:
                self._fail(name, f"choose from {choices}, got {getattr(self, name)!r}")
        for name in ("num_blocks", "locate_prompts", "epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                self._fail(name, f"must be a positive integer, got {getattr(self, name)!r}")
        if not self.lr > 0:
            self._fail("lr", f"must be > 0, got {self.lr!r}")
        if not self.min_ub_ratio >= 0:
            self._fail("min_ub_ratio", f"must be >= 0, got {self.min_ub_ratio!r}")
        if self.patience is not None and self.select != "best_dev":
            self._fail("patience", "early stopping needs select='best_dev'")
        if self.method == "lora" and self.lora_r < 1:
            self._fail("lora_r", f"must be >= 1, got {self.lora_r}")

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
