"""The editing baselines' configs, declarative like LFTFConfig (every field typed, defaulted
and explained; ``__post_init__`` names the field it rejects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lftf_train.config import RunConfig, _csv

# The rank `lftf-train dama` chose for SmolLM2 on the dev splits (README): the report's
# DAMA row uses it unless told to choose among several.
DAMA_RANKS = (8,)


@dataclass
class DAMAConfig(RunConfig):
    """DAMA's settings; defaults from the reference's LLaMA-7B configuration, its layers
    scaled to the model's depth."""

    layers: Any = field(
        default="auto",
        metadata={
            "help": "Blocks whose down-projection is edited: 'auto' (the 9 blocks ending two "
            "below the top, as the reference's 7B configuration: 19-27 of 30), a range such "
            "as '19-27', indices '25,26,27', or several sets (a list) to choose among on dev."
        },
    )
    ranks: Any = field(
        default=(8, 16, 32, 64, 128),
        metadata={
            "help": "Projection rank(s) k (PLS components): one value, or several to choose "
            "among on the dev splits (the reference's 7B run: 128 of 4096 dimensions)."
        },
    )
    targets: Any = field(
        default=("he", "she", "they"),
        metadata={"help": "Words whose value vectors are removed (a space goes before each)."},
    )
    v_num_grad_steps: int = field(default=20, metadata={"help": "Value optimisation steps."})
    v_lr: float = field(default=0.5, metadata={"help": "Adam learning rate of the values."})
    v_weight_decay: float = field(
        default=0.5, metadata={"help": "Norm penalty: wd * |delta|^2 / |h| (reference: 0.5)."}
    )
    clamp_norm_factor: float = field(
        default=4.0, metadata={"help": "|delta| stays within this factor of |h| (reference: 4)."}
    )
    kl_factor: float = field(
        default=0.0625, metadata={"help": "Weight of the KL term on '{subject} is a'."}
    )
    whitening: bool = field(
        default=False,
        metadata={
            "help": "Whiten U by the keys' second moment C before PLS: U (lambda C + U^T U)^-1 "
            "(off in the reference's run scripts)."
        },
    )
    mom2_update_weight: float = field(
        default=20000.0, metadata={"help": "lambda of the whitening (reference: 20000)."}
    )
    cov_text: str | None = field(
        default=None,
        metadata={
            "help": "With whitening: a text file for C (e.g. Wikipedia); default: 20k tokens "
            "sampled from the model with the seed, cached."
        },
    )
    cov_tokens: int = field(
        default=20_000, metadata={"help": "Tokens sampled from the model for C (no --cov-text)."}
    )
    value_batch_size: int = field(
        default=128, metadata={"help": "Requests whose values are optimised together."}
    )
    min_ub_ratio: float = field(
        default=0.8,
        metadata={
            "help": "Rank choice: only settings whose dev hint score (UB) keeps this "
            "fraction of the original's count."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            self.ranks = sorted({int(r) for r in _csv(_listify(self.ranks))})
        except (TypeError, ValueError):
            self._fail("ranks", f"integers such as '16' or '8,16,32', got {self.ranks!r}")
        if not self.ranks or min(self.ranks) < 0:
            self._fail("ranks", f"non-negative integers, got {self.ranks!r}")
        self.targets = list(_csv(_listify(self.targets)))
        if len(self.targets) < 2:
            self._fail("targets", f"at least two words, got {self.targets!r}")
        if self.layers != "auto":
            try:
                self.layers = parse_layer_sets(self.layers)
            except ValueError as err:
                self._fail("layers", str(err))
        for name in ("v_num_grad_steps", "value_batch_size", "cov_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                self._fail(name, f"must be a positive integer, got {getattr(self, name)!r}")

    def layer_sets(self, n_blocks: int) -> list[list[int]]:
        sets = [default_layers(n_blocks)] if self.layers == "auto" else self.layers
        bad = [b for layers in sets for b in layers if not 0 <= b < n_blocks]
        if bad:
            self._fail("layers", f"{bad} out of range: the model has blocks 0..{n_blocks - 1}")
        return sets


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


def parse_layer_sets(value: Any) -> list[list[int]]:
    """'19-27' -> [[19..27]]; '25,26,27' -> [[25, 26, 27]]; a list of such -> several sets."""
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, int) for v in value)
    ):
        value = [value]
    sets = []
    for item in value:
        layers = []
        for part in _csv(item) if isinstance(item, str) else item:
            if isinstance(part, str) and "-" in part:
                low, high = (int(x) for x in part.split("-"))
                layers += range(low, high + 1)
            else:
                layers.append(int(part))
        if not layers:
            raise ValueError(f"an empty layer set in {value!r}")
        sets.append(sorted(set(layers)))
    return sets


def default_layers(n_blocks: int) -> list[int]:
    """The reference's 7B setting scaled: 9 blocks ending two below the top (21-29 of 32)."""
    return list(range(max(n_blocks - 11, 0), n_blocks - 2))


EDITORS = ("rome", "r-rome", "memit")
TARGET_RULES = ("counter", "he", "she")
# Per editor, the reference configuration the paper's Table 3 ran (EasyEdit's hparams for
# Llama-3.2-3B, 28 blocks): edited blocks (scaled to the model's depth), the second-moment
# adjustment, and the context prefixes (length in tokens, how many).
EDITOR_DEFAULTS = {
    "rome": {"blocks": (5,), "mom2_adjustment": False, "context": ((5, 10), (10, 10))},
    "r-rome": {"blocks": (5,), "mom2_adjustment": False, "context": ((5, 10), (10, 10))},
    "memit": {"blocks": (4, 5, 6, 7, 8), "mom2_adjustment": True, "context": ((10, 5),)},
}
REFERENCE_DEPTH = 28


@dataclass
class EditConfig(RunConfig):
    """ROME, R-ROME or MEMIT applied to a sequence of GenBiasEval-train requests; defaults
    from EasyEdit's Llama-3.2-3B hyperparameters (the paper's Table 3)."""

    editor: str = field(
        default="rome",
        metadata={"help": "'rome' (Meng et al. 2022), 'r-rome' (Gupta et al. 2024) or 'memit'."},
    )
    layers: Any = field(
        default="auto",
        metadata={
            "help": "Blocks whose down-projection is edited: 'auto' (the reference's for "
            "Llama-3.2-3B scaled to this depth: ROME block 5 of 28, MEMIT blocks 4-8), a range "
            "'4-8' or indices '5'."
        },
    )
    limit: int | None = field(
        default=None,
        metadata={"help": "Edit this many requests, drawn with the seed (default: all 943)."},
    )
    target: str = field(
        default="counter",
        metadata={
            "help": "The pronoun each edit makes likely: 'counter' (the one the original model "
            "finds less likely for that prompt), 'he' or 'she'."
        },
    )
    v_num_grad_steps: int = field(default=25, metadata={"help": "Value optimisation steps."})
    v_lr: float = field(default=0.5, metadata={"help": "Adam learning rate of the value."})
    v_weight_decay: float = field(
        default=1e-3, metadata={"help": "Penalty wd * |delta| / |v0|^2 (reference: 1e-3)."}
    )
    clamp_norm_factor: float = field(
        default=4.0, metadata={"help": "|delta| stays within this factor of |v0|."}
    )
    kl_factor: float = field(
        default=0.0625, metadata={"help": "Weight of the KL term on '{subject} is a'."}
    )
    context_prefixes: bool = field(
        default=True,
        metadata={
            "help": "Average the key and the value's loss over the prompt after short texts "
            "the model samples, as the reference does (20 for ROME and R-ROME, 5 for MEMIT); "
            "false: the bare prompt alone (5-10x faster on a CPU)."
        },
    )
    mom2_adjustment: bool | None = field(
        default=None,
        metadata={
            "help": "Use the keys' second moment C (ROME's C^-1 k*, MEMIT's lambda C); None: "
            "the reference's choice (off for ROME and R-ROME, on for MEMIT)."
        },
    )
    mom2_update_weight: float = field(
        default=15000.0, metadata={"help": "MEMIT's lambda (reference: 15000)."}
    )
    cov_text: str | None = field(
        default=None,
        metadata={
            "help": "A text file for C (e.g. Wikipedia); default: text sampled from the model "
            "with the seed (cov_tokens tokens), cached."
        },
    )
    cov_tokens: int = field(
        default=20_000, metadata={"help": "Tokens sampled from the model for C (no --cov-text)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.editor not in EDITORS:
            self._fail("editor", f"choose from {EDITORS}, got {self.editor!r}")
        if self.target not in TARGET_RULES:
            self._fail("target", f"choose from {TARGET_RULES}, got {self.target!r}")
        if self.layers != "auto":
            try:
                (self.layers,) = parse_layer_sets(self.layers)
            except ValueError as err:
                self._fail("layers", f"one set of blocks such as '5' or '4-8' ({err})")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            self._fail("limit", f"a positive number of requests, got {self.limit!r}")
        for name in ("v_num_grad_steps", "cov_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                self._fail(name, f"must be a positive integer, got {getattr(self, name)!r}")
        if self.mom2_adjustment is None:
            self.mom2_adjustment = EDITOR_DEFAULTS[self.editor]["mom2_adjustment"]
        if self.editor == "memit" and not self.mom2_adjustment:
            self._fail("mom2_adjustment", "MEMIT's update needs the keys' second moment C")

    def blocks(self, n_blocks: int) -> list[int]:
        if self.layers == "auto":
            reference = EDITOR_DEFAULTS[self.editor]["blocks"]
            first = round(reference[0] * n_blocks / REFERENCE_DEPTH)
            top = n_blocks - 2  # a value at a block's output needs a block above it
            return sorted({min(first + i, top) for i in range(len(reference))})
        bad = [b for b in self.layers if not 0 <= b < n_blocks]
        if bad:
            self._fail("layers", f"{bad} out of range: the model has blocks 0..{n_blocks - 1}")
        return self.layers

    @property
    def context(self) -> tuple:
        """(length, how many) of the context prefixes; none without context_prefixes."""
        return EDITOR_DEFAULTS[self.editor]["context"] if self.context_prefixes else ()
