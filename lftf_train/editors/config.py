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
