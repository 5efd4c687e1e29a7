"""Knowledge editors applied to GenBiasEval-train as the LFTF paper's Table 3 does: one
request after another on one model that accumulates every edit (EasyEdit's
sequential_edit). A request is a prompt, its subject (the profession) and a target pronoun;
each edit's efficacy is P(target) on its prompt just before and just after it."""

from __future__ import annotations

import random
import time

import torch
from tqdm.auto import tqdm

from lftf_train.blocks import num_blocks
from lftf_train.editors import memit, rome
from lftf_train.editors.common import context_templates, frozen, requests, second_moments
from lftf_train.editors.config import EditConfig
from lftf_train.scoring import encode, word_token_id

PRONOUNS = ("he", "she")
LOG_EVERY = 100  # edits between progress lines, for logs where tqdm's bar is off


@torch.no_grad()
def pronoun_probs(model, tokenizer, prompts: list[str], ids: list[int], batch_size: int = 64):
    """P(" he"), P(" she") after each prompt: (n, 2)."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[i : i + batch_size], device)
        logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        out.append(logits.float().softmax(-1)[:, ids].cpu())
    return torch.cat(out)


def chosen_requests(config: EditConfig, model, tokenizer) -> list[dict]:
    """The requests to edit, in order: ``limit`` of them drawn with the seed, each with its
    target (config.target; 'counter': the pronoun the original model finds less likely)."""
    reqs = requests(config.load_axis())
    if config.limit is not None:
        reqs = random.Random(config.seed).sample(reqs, min(config.limit, len(reqs)))
    ids = [word_token_id(tokenizer, p, why="the editors' targets") for p in PRONOUNS]
    probs = pronoun_probs(model, tokenizer, [r.prompt for r in reqs], ids)
    chosen = []
    for r, (p_he, p_she) in zip(reqs, probs.tolist()):
        target = config.target if config.target != "counter" else ("he" if p_he < p_she else "she")
        chosen.append({"request": r, "target": target})
    return chosen


def run_edits(model, tokenizer, config: EditConfig, corpus_fn, log=print, show_progress=True):
    """Edit ``model`` in place with every chosen request, in order; the record of each."""
    blocks = config.blocks(num_blocks(model))
    ids = {p: word_token_id(tokenizer, p, why="the editors' targets") for p in PRONOUNS}
    todo = chosen_requests(config, model, tokenizer)
    start = time.perf_counter()
    templates = context_templates(model, tokenizer, config.context, config.seed)
    moments = (
        second_moments(model, tokenizer, corpus_fn(), blocks) if config.mom2_adjustment else None
    )
    setup = round(time.perf_counter() - start, 1)
    log(f"{config.editor}: {len(todo)} edits at blocks {blocks}, {len(templates)} contexts")
    records = []
    with frozen(model):
        for item in tqdm(
            todo, desc=config.editor, unit="edit", disable=None if show_progress else True
        ):
            r, target = item["request"], item["target"]
            before = pronoun_probs(model, tokenizer, [r.prompt], list(ids.values()))[0]
            t0 = time.perf_counter()
            if config.editor == "memit":
                done = memit.edit(
                    model, tokenizer, r, ids[target], blocks, templates, config, moments
                )
            else:
                moment = moments[blocks[0]] if moments is not None else None
                done = rome.edit(
                    model, tokenizer, r, ids[target], blocks[0], templates, config, moment
                )
            after = pronoun_probs(model, tokenizer, [r.prompt], list(ids.values()))[0]
            t = PRONOUNS.index(target)
            records.append(
                {
                    "prompt": r.prompt,
                    "subject": r.subject,
                    "target": target,
                    "p_target_before": before[t].item(),
                    "p_target_after": after[t].item(),
                    "p_he_after": after[0].item(),
                    "p_she_after": after[1].item(),
                    "seconds": round(time.perf_counter() - t0, 2),
                    **done,
                }
            )
            if len(records) % LOG_EVERY == 0:
                rate = summary(records)["success_rate"]
                elapsed = time.perf_counter() - start - setup
                log(
                    f"{config.editor}: {len(records)}/{len(todo)} edits in {elapsed:.0f} s, "
                    f"target likelier after {rate:.0%} of them"
                )
    return {
        "editor": config.editor,
        "blocks": blocks,
        "edits": records,
        "contexts": templates,
        "summary": summary(records),
        "timings_s": {"setup": setup, "edits": round(time.perf_counter() - start - setup, 1)},
    }


def summary(records: list[dict]) -> dict:
    """Mean efficacy: P(target) before and after each edit, and how often the edit made the
    target the likelier pronoun."""
    n = len(records)
    other = {"he": "p_she_after", "she": "p_he_after"}
    return {
        "edits": n,
        "targets": {p: sum(r["target"] == p for r in records) for p in PRONOUNS},
        "mean_p_target_before": sum(r["p_target_before"] for r in records) / n,
        "mean_p_target_after": sum(r["p_target_after"] for r in records) / n,
        "success_rate": sum(r["p_target_after"] > r[other[r["target"]]] for r in records) / n,
    }
