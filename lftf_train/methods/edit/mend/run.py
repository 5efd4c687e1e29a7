"""MEND in the editors' sequence (``methods/edit/sequence.py``): ``prepare`` trains the
editor on the axis's train requests (or loads it from the lftf cache), ``edit`` applies it
to one request on the model as it stands after the edits before."""

from __future__ import annotations

import dataclasses
import random

import torch

from lftf_train.editing import frozen
from lftf_train.methods.edit import plots
from lftf_train.methods.edit.mend import store
from lftf_train.methods.edit.mend.editor import MENDEditor, apply_updates, edit_factors
from lftf_train.methods.edit.mend.factors import edited_modules, weight_shape
from lftf_train.methods.edit.mend.settings import default_rank
from lftf_train.methods.edit.mend.train import Example, cached_states, train_editor
from lftf_train.methods.edit.prepared import Prepared
from lftf_train.records import footer
from lftf_train.scoring import encode, target_token_ids


def prepare(
    model, tokenizer, config, blocks, corpus_fn, requests_fn, log=print, show_progress=True
):
    """The trained editor for ``model`` and ``config`` (``Prepared.state``): from the lftf
    cache, or trained now (and cached). ``requests_fn(config)``: the requests with their
    targets, as the sequence of edits chooses them; ``corpus_fn()``: the model-sampled text
    for the locality loss."""
    names = edited_modules(model, blocks)
    width = sum(weight_shape(model.get_submodule(names[0])))
    rank = config.mend_rank or default_rank(width)
    torch.manual_seed(config.seed)
    editor = MENDEditor.for_model(model, names, rank, config.mend_alpha)
    settings = {
        **config.training_settings(),
        "mend_rank": rank,
        "names": names,
        "axis": config.load_axis().name,
        "target": config.target,
        "seed": config.seed,
    }
    folder = store.cache_folder(store.cache_key(store.content_hash(model), settings))
    if folder.exists() and not config.mend_retrain:
        record = store.load_editor(folder, editor)
        log(f"MEND: editor loaded from {folder} (trained {record['curve'][-1]['step']} edits)")
    else:
        every = requests_fn(dataclasses.replace(config, edits=None))
        data = training_data(model, tokenizer, config, blocks[0], every, corpus_fn())
        log(
            f"MEND: training the editor of {len(names)} matrices (blocks {blocks}, rank "
            f"{rank}) on {len(data['train'])} requests, {len(data['val'])} held out"
        )
        with frozen(model):
            curve = train_editor(model, editor, blocks[0], data, config, log, show_progress)
        record = {
            "settings": settings,
            "curve": curve.points,
            "best_step": curve.best["step"],
            "stopped": curve.stopped or f"ran all {config.mend_steps} steps",
            "held_out": data["held_out"],
            "seconds": curve.points[-1]["seconds"],
        }
        store.save_editor(folder, editor, record)
    return Prepared(editor, record, artifacts(editor, record, config))


def training_data(model, tokenizer, config, start: int, chosen: list[dict], texts: list[str]):
    """Examples (cached states entering block ``start``, counter targets), the held-out
    requests, and windows of model-sampled text for the locality loss."""
    axis = config.load_axis()
    group_ids = target_token_ids(tokenizer, axis)
    prompts = [c["request"].prompt for c in chosen]
    states = cached_states(model, tokenizer, prompts, start)
    examples = []
    for c, state in zip(chosen, states):
        g = axis.labels.index(c["target"])
        examples.append(Example(state, group_ids[g][0], group_ids, g))
    if config.mend_val_requests >= len(examples):
        raise ValueError(
            f"EditConfig.mend_val_requests: {config.mend_val_requests} held out of "
            f"{len(examples)} train requests leaves none to train on; hold out fewer"
        )
    held = set(random.Random(config.seed).sample(range(len(examples)), config.mend_val_requests))
    windows = cached_states(model, tokenizer, text_windows(tokenizer, texts, config), start)
    cut = max(1, len(windows) // 10)
    return {
        "train": [e for i, e in enumerate(examples) if i not in held],
        "val": [examples[i] for i in sorted(held)],
        "held_out": [prompts[i] for i in sorted(held)],
        "windows": windows[cut:],
        "val_windows": windows[:cut],
    }


def text_windows(tokenizer, texts: list[str], config, limit: int = 1024) -> list[str]:
    """Consecutive windows of ``mend_loc_tokens`` tokens of the sampled texts, as text."""
    out, size = [], config.mend_loc_tokens
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        out += [tokenizer.decode(ids[i : i + size]) for i in range(0, len(ids), size)]
    out = [w for w in out if w.strip()][:limit]
    if len(out) < 2 * config.mend_loc_windows:
        raise ValueError(
            f"MEND's locality text gave {len(out)} windows of {size} tokens, fewer than "
            f"2 x mend_loc_windows ({config.mend_loc_windows}): give more text (cov_tokens "
            "or cov_text) or fewer, shorter windows"
        )
    return out


def edit(model, tokenizer, request, target: int, blocks, templates, config, editor: MENDEditor):
    """One MEND edit of ``request`` towards ``target`` by the trained ``editor``, applied in
    place; what it did."""
    batch = encode(tokenizer, [request.prompt], next(model.parameters()).device)
    factors = edit_factors(model, editor.names, batch, target)
    with torch.no_grad():
        updates = editor.updates(factors)
    apply_updates(model, updates)
    norm = sum(u.norm().item() ** 2 for u in updates.values()) ** 0.5
    return {"blocks": list(blocks), "update_norm": norm}


def artifacts(editor: MENDEditor, record: dict, config) -> dict:
    """The editor, its training record and curve, for the output folder."""

    def write(folder, run_record):
        store.write_editor(folder, editor, record)
        plots.plot_mend_training(
            record["curve"],
            folder / "mend_training.png",
            title=f"MEND editor on {config.model}: held-out requests",
            footer=footer(run_record, config.seed),
        )

    return {store.EDITOR_FILE: write}
