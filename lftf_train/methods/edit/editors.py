"""The knowledge editors, one table: what each edit function is, and the reference
configuration the paper's Table 3 ran (EasyEdit's hparams for Llama-3.2-3B, 28 blocks), read
from ``hparams/<editor>.yaml`` as EasyEdit keeps its ``hparams/<ALG>/<model>.yaml``: edited
blocks (scaled to the model's depth; negative: counted from the top), the second-moment
adjustment, and the context prefixes (length in tokens, how many); what an editor prepares
once before its edits (the second moment, MEND's trained network) and which modules it
rewrites. An editor is one YAML file and one line of ``CODE``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from lftf_train.editing import mlp_out_name
from lftf_train.methods.edit import memit, rome
from lftf_train.methods.edit.mend import run as mend

HPARAMS = Path(__file__).parent / "hparams"


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
    reference_depth: int  # the blocks of the model the reference configuration is for
    needs_moments: bool = False
    # (model, tokenizer, config, blocks, corpus_fn, requests_fn, log, show_progress) ->
    # Prepared, whose state every edit takes last
    prepare: Callable = rome.prepare
    # (model, blocks) -> names of the modules it rewrites (the adapter's modules)
    modules: Callable = lambda model, blocks: [mlp_out_name(model, b) for b in blocks]


# What each editor runs; its settings come from hparams/<name>.yaml.
CODE = {
    "rome": {"edit": rome.edit},
    "r-rome": {"edit": rome.edit},
    "memit": {"edit": memit.edit},
    "mend": {"edit": mend.edit, "prepare": mend.prepare, "modules": mend.edited_modules},
}
REQUIRED = {"title", "label", "blocks", "mom2_adjustment", "context", "reference_depth"}
OPTIONAL = {"needs_moments", "edit_options"}  # edit_options: keywords of its edit function


def load_editor(name: str, path: Path | None = None) -> Editor:
    """The editor ``name``: its code from ``CODE``, its settings from its YAML file."""
    path = path or HPARAMS / f"{name}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown, missing = sorted(set(spec) - REQUIRED - OPTIONAL), sorted(REQUIRED - set(spec))
    if unknown or missing:
        raise ValueError(
            f"{path}: unknown settings {unknown}, missing {missing}; an editor's settings are "
            f"{sorted(REQUIRED)} and optionally {sorted(OPTIONAL)}"
        )
    code = dict(CODE[name])
    options = spec.pop("edit_options", None)
    if options:
        code["edit"] = functools.partial(code["edit"], **options)
    spec["blocks"] = tuple(spec["blocks"])
    spec["context"] = tuple(tuple(c) for c in spec["context"])
    return Editor(**code, **spec)


EDITORS = {name: load_editor(name) for name in CODE}
