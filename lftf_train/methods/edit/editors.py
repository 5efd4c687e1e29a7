"""The knowledge editors, one table: what each edit function is, and the reference
configuration the paper's Table 3 ran (EasyEdit's hparams for Llama-3.2-3B, 28 blocks):
edited blocks (scaled to the model's depth), the second-moment adjustment, and the context
prefixes (length in tokens, how many). An editor is one more line here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from lftf_train.methods.edit import memit, rome

REFERENCE_DEPTH = 28


@dataclass(frozen=True)
class Editor:
    # (model, tokenizer, request, target id, blocks, templates, config, moments) -> record
    edit: Callable
    title: str
    label: str  # the report's row
    blocks: tuple[int, ...]
    mom2_adjustment: bool
    context: tuple[tuple[int, int], ...]
    needs_moments: bool = False


EDITORS = {
    "rome": Editor(rome.edit, "ROME (Meng et al. 2022)", "ROME", (5,), False, ((5, 10), (10, 10))),
    "r-rome": Editor(
        functools.partial(rome.edit, averaged_key=True),
        "R-ROME (Gupta et al. 2024)",
        "R-ROME",
        (5,),
        False,
        ((5, 10), (10, 10)),
    ),
    "memit": Editor(
        memit.edit, "MEMIT (Meng et al. 2023)", "MEMIT", (4, 5, 6, 7, 8), True, ((10, 5),), True
    ),
}
