"""DAMAConfig: DAMA's settings, declarative like every method's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lftf_train.config import ValueConfig, _csv, option, parse_layer_sets, with_defaults

# The rank `lftf-train dama` chose for SmolLM2 on the dev splits (README): the report's
# DAMA row uses it unless told to choose among several.
DAMA_RANKS = (8,)
# The reference removes the values of " he", " she" and " they": the axis's words, then this.
NEUTRAL_TARGET = "they"


@dataclass
@with_defaults(v_num_grad_steps=20, v_weight_decay=0.5, mom2_update_weight=20000.0)
class DAMAConfig(ValueConfig):
    """DAMA's settings; defaults from the reference's LLaMA-7B configuration, its layers
    scaled to the model's depth."""

    layers: Any = option(
        "auto",
        "Blocks whose down-projection is edited: 'auto' (the 9 blocks ending two below the "
        "top, as the reference's 7B configuration: 19-27 of 30), a range such as '19-27', "
        "indices '25,26,27', or several sets (repeat the flag) to choose among on dev.",
        group="DAMA",
        repeat=True,
    )
    ranks: Any = option(
        (8, 16, 32, 64, 128),
        "Projection rank(s) k (PLS components): one value, or several to choose among on the "
        "dev splits (the reference's 7B run: 128 of 4096 dimensions).",
        group="DAMA",
    )
    targets: Any = option(
        None,
        "Words whose value vectors are removed (a space goes before each). Default: every "
        f"word of the axis's groups, then '{NEUTRAL_TARGET}' (for gender the reference's he, "
        "she, they).",
        group="DAMA",
    )
    whitening: bool = option(
        False,
        "Whiten U by the keys' second moment C before PLS: U (lambda C + U^T U)^-1 (off in "
        "the reference's run scripts).",
        group="DAMA",
    )
    requests: int | None = option(
        None,
        "Compute the values of this many of the axis's train requests (1..943 for gender), "
        "drawn with the seed (default: all of them, as the paper); fewer for a quick trial.",
        group="DAMA",
    )
    value_batch_size: int = option(
        128, "Requests whose values are optimised together.", group="DAMA"
    )
    min_ub_ratio: float = option(
        0.8,
        "Rank choice: only settings whose dev hint score (UB) keeps this fraction of the "
        "original's count.",
        group="DAMA",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        axis = self.load_axis()
        if not axis.slopes:
            self._fail(
                "axis",
                f"DAMA chooses its rank and blocks by the stereotype slopes, which axis "
                f"'{axis.name}' does not define (its subjects have no stereotype scores); "
                "use an axis with slopes, e.g. gender",
            )
        try:
            self.ranks = sorted({int(r) for r in _csv(_listify(self.ranks))})
        except (TypeError, ValueError):
            self._fail("ranks", f"integers such as '16' or '8,16,32', got {self.ranks!r}")
        if not self.ranks or min(self.ranks) < 1:
            self._fail(
                "ranks",
                "a projection rank is 1 or more (rank 0 removes nothing: it is the original "
                "model) and at most the hidden size; give e.g. '8' or '8,16,32'",
            )
        if self.targets is None:
            words = [w for group in axis.groups for w in group.words]
            self.targets = [*words, NEUTRAL_TARGET]
        self.targets = list(_csv(_listify(self.targets)))
        if len(self.targets) < 2:
            self._fail("targets", f"at least two words, got {self.targets!r}")
        if self.layers != "auto":
            try:
                self.layers = parse_layer_sets(self.layers)
            except ValueError as err:
                self._fail("layers", str(err))
        self._positive("value_batch_size")
        self._non_negative("min_ub_ratio")
        if self.requests is not None:
            self._train_count("requests", note=" (or leave it unset for all)")

    def layer_sets(self, n_blocks: int) -> list[list[int]]:
        sets = [default_layers(n_blocks)] if self.layers == "auto" else self.layers
        bad = [b for layers in sets for b in layers if not 0 <= b < n_blocks]
        if bad:
            self._fail("layers", f"{bad} out of range: the model has blocks 0..{n_blocks - 1}")
        return sets


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


def default_layers(n_blocks: int) -> list[int]:
    """The reference's 7B setting scaled: 9 blocks ending two below the top (21-29 of 32)."""
    return list(range(max(n_blocks - 11, 0), n_blocks - 2))
