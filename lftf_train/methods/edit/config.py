"""EditConfig: the knowledge editors' settings (ROME, R-ROME, MEMIT), declarative like every
method's config; the editors themselves are the table in ``editors.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lftf_train.config import ValueConfig, option, parse_layer_sets
from lftf_train.methods.edit.editors import EDITORS
from lftf_train.methods.edit.mend.settings import MENDSettings

COUNTER = "counter"


@dataclass
class EditConfig(MENDSettings, ValueConfig):
    """A knowledge editor applied to a sequence of the axis's train requests; defaults from
    EasyEdit's Llama-3.2-3B hyperparameters (the paper's Table 3). The value fields are
    ROME's, R-ROME's and MEMIT's; the mend_* fields MEND's."""

    editor: str = option(
        "rome",
        "; ".join(f"'{name}': {e.title}" for name, e in EDITORS.items()) + ".",
        choices=tuple(EDITORS),
        group="editing",
    )
    layers: Any = option(
        "auto",
        "Blocks whose MLP is edited (ROME, R-ROME, MEMIT: its down-projection; MEND: all its "
        "projections): 'auto' (the reference's for Llama-3.2-3B scaled to this depth: ROME "
        "block 5 of 28, MEMIT blocks 4-8; MEND the top three), a range '4-8' or indices '5'.",
        group="editing",
    )
    edits: int | None = option(
        None,
        "The number of edits: this many of the axis's train requests (1..943 for gender) are "
        "edited one after another, drawn with the seed (default: all of the train split). Not "
        "--limit, which is lm-eval's docs per task in the evaluation.",
        group="editing",
    )
    target: str = option(
        COUNTER,
        "The group each edit makes likely: 'counter' (the group the original model finds "
        "least likely for that prompt) or a group label of the axis ('he', 'she' for gender). "
        "An edit's target token is its group's first word.",
        group="editing",
    )
    context_prefixes: bool = option(
        True,
        "Average the key and the value's loss over the prompt after short texts the model "
        "samples, as the reference does (20 for ROME and R-ROME, 5 for MEMIT); false: the "
        "bare prompt alone (5-10x faster on a CPU).",
        group="editing",
    )
    mom2_adjustment: bool | None = option(
        None,
        "Use the keys' second moment C (ROME's C^-1 k*, MEMIT's lambda C); None: the "
        "reference's choice (off for ROME and R-ROME, on for MEMIT).",
        group="editing",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        labels = self.load_axis().labels
        if self.target != COUNTER and self.target not in labels:
            self._fail(
                "target", f"'{COUNTER}' or a group of the axis {labels}, got {self.target!r}"
            )
        if self.layers != "auto":
            try:
                (self.layers,) = parse_layer_sets(self.layers)
            except ValueError as err:
                self._fail("layers", f"one set of blocks such as '5' or '4-8' ({err})")
        if self.edits is not None:
            self._train_count("edits", note=" (or leave it unset for all)")
        if self.mom2_adjustment is None:
            self.mom2_adjustment = EDITORS[self.editor].mom2_adjustment
        self.check_mend()
        if self.editor == "mend":  # MEND trains on every train request but those held out
            self._train_count("mend_val_requests", spare=1, note=" (the rest are trained on)")
        if EDITORS[self.editor].needs_moments and not self.mom2_adjustment:
            self._fail("mom2_adjustment", f"{self.editor}'s update needs the keys' second moment C")

    def blocks(self, n_blocks: int) -> list[int]:
        if self.layers == "auto":
            reference, depth = EDITORS[self.editor].blocks, EDITORS[self.editor].reference_depth
            if reference[0] < 0:  # counted from the top
                return [n_blocks + b for b in reference if n_blocks + b >= 0]
            first = round(reference[0] * n_blocks / depth)
            top = n_blocks - 2  # a value at a block's output needs a block above it
            return sorted({min(first + i, top) for i in range(len(reference))})
        bad = [b for b in self.layers if not 0 <= b < n_blocks]
        if bad:
            self._fail("layers", f"{bad} out of range: the model has blocks 0..{n_blocks - 1}")
        return self.layers

    @property
    def context(self) -> tuple:
        """(length, how many) of the context prefixes; none without context_prefixes."""
        return EDITORS[self.editor].context if self.context_prefixes else ()
