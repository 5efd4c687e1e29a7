"""The knowledge editors, one table: what each edit function is, and the reference
configuration the paper's Table 3 ran (EasyEdit's hparams for Llama-3.2-3B, 28 blocks):
edited blocks (scaled to the model's depth; negative: counted from the top), the
second-moment adjustment, and the context prefixes (length in tokens, how many); what an
editor prepares once before its edits (the second moment, MEND's trained network) and which
modules it rewrites. An editor is one more line here."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from lftf_train.editing import mlp_out_name
from lftf_train.methods.edit import memit, rome
from lftf_train.methods.edit.mend import run as mend

REFERENCE_DEPTH = 28


@dataclass(frozen=True)
class Editor:
    # (model, tokenizer, request, target id, blocks, templates, config, prepared state)
    # -> what the edit did
    edit: Callable
    title: str
    label: str  # the report's row
    blocks: tuple[int, ...]
    mom2_adjustment: bool
    context: tuple[tuple[int, int], ...]
    needs_moments: bool = False
    # (model, tokenizer, config, blocks, corpus_fn, requests_fn, log, show_progress) ->
    # Prepared, whose state every edit takes last
    prepare: Callable = rome.prepare
    # (model, blocks) -> names of the modules it rewrites (the adapter's modules)
    modules: Callable = lambda model, blocks: [mlp_out_name(model, b) for b in blocks]


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
    "mend": Editor(
        mend.edit,
        "MEND (Mitchell et al. 2022): an editor network trained on the train requests",
        "MEND",
        (-3, -2, -1),
        False,
        (),
        prepare=mend.prepare,
        modules=mend.edited_modules,
    ),
}
