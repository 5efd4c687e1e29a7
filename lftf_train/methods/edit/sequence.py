"""Knowledge editors applied to an axis's train split as the LFTF paper's Table 3 does: one
request after another on one model that accumulates every edit (EasyEdit's
sequential_edit). A request is a prompt, its subject (the profession) and a target group
of the axis; each edit's efficacy is P(target group) on its prompt just before and just
after it."""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from lftf_train.blocks import num_blocks
from lftf_train.editing import context_templates, frozen, requests
from lftf_train.methods.edit.config import COUNTER, EditConfig
from lftf_train.methods.edit.editors import EDITORS
from lftf_train.scoring import encode, target_token_ids

LOG_EVERY = 100  # edits between progress lines, for logs where tqdm's bar is off


@torch.no_grad()
def group_probs(model, tokenizer, prompts: list[str], group_ids, batch_size: int = 64):
    """P(group) after each prompt, the sum of its words' next-token probabilities:
    (n, groups); (P(" he"), P(" she")) for gender."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[i : i + batch_size], device)
        logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        probs = logits.float().softmax(-1)
        out.append(torch.stack([probs[:, ids].sum(-1) for ids in group_ids], -1).cpu())
    return torch.cat(out)


def chosen_requests(config: EditConfig, model, tokenizer) -> list[dict]:
    """The requests to edit, in order: ``limit`` of them drawn with the seed, each with its
    target group (config.target; 'counter': the group the original model finds least
    likely for that prompt)."""
    axis = config.load_axis()
    reqs = requests(axis, limit=config.edits, seed=config.seed)
    probs = group_probs(
        model, tokenizer, [r.prompt for r in reqs], target_token_ids(tokenizer, axis)
    )
    labels = axis.labels
    chosen = []
    for r, p in zip(reqs, probs.tolist()):
        target = config.target if config.target != COUNTER else labels[p.index(min(p))]
        chosen.append({"request": r, "target": target})
    return chosen


def run_edits(model, tokenizer, config: EditConfig, corpus_fn, log=print, show_progress=True):
    """Edit ``model`` in place with every chosen request, in order; the record of each."""
    axis, editor = config.load_axis(), EDITORS[config.editor]
    blocks = config.blocks(num_blocks(model))
    group_ids = target_token_ids(tokenizer, axis)
    todo = chosen_requests(config, model, tokenizer)
    start = time.perf_counter()
    templates = context_templates(model, tokenizer, config.context, config.seed)

    def chosen(c: EditConfig) -> list[dict]:  # the requests another config would choose
        return todo if c == config else chosen_requests(c, model, tokenizer)

    prepared = editor.prepare(
        model, tokenizer, config, blocks, corpus_fn, chosen, log, show_progress
    )
    setup = round(time.perf_counter() - start, 1)
    log(f"{config.editor}: {len(todo)} edits at blocks {blocks}, {len(templates)} contexts")
    records = []
    bar = tqdm(todo, desc=config.editor, unit="edit", disable=None if show_progress else True)
    with frozen(model):
        for item in bar:
            r, t = item["request"], axis.labels.index(item["target"])
            before = group_probs(model, tokenizer, [r.prompt], group_ids)[0]
            t0 = time.perf_counter()
            target_id = group_ids[t][0]  # the group's first word
            done = editor.edit(
                model, tokenizer, r, target_id, blocks, templates, config, prepared.state
            )
            after = group_probs(model, tokenizer, [r.prompt], group_ids)[0]
            records.append(
                {
                    "prompt": r.prompt,
                    "subject": r.subject,
                    "target": item["target"],
                    "target_word": axis.groups[t].words[0],
                    "p_target_before": before[t].item(),
                    "p_target_after": after[t].item(),
                    **{f"p_{g}_after": after[i].item() for i, g in enumerate(axis.labels)},
                    "seconds": round(time.perf_counter() - t0, 2),
                    **done,
                }
            )
            if len(records) % LOG_EVERY == 0:
                _log_progress(log, config, records, len(todo), time.perf_counter() - start - setup)
    return {
        "editor": config.editor,
        "blocks": blocks,
        "edits": records,
        "contexts": templates,
        "summary": summary(records, axis.labels),
        "timings_s": {"setup": setup, "edits": round(time.perf_counter() - start - setup, 1)},
        "prepared": prepared,
    }


def _log_progress(log, config, records, total: int, elapsed: float) -> None:
    rate = summary(records, [])["success_rate"]
    log(
        f"{config.editor}: {len(records)}/{total} edits in {elapsed:.0f} s, "
        f"target likeliest after {rate:.0%} of them"
    )


def summary(records: list[dict], labels: list[str]) -> dict:
    """Mean efficacy: P(target) before and after each edit, and how often the edit made the
    target the likeliest group."""
    n = len(records)

    def likeliest(r: dict) -> bool:
        others = [v for k, v in r.items() if _is_group_key(k) and k != f"p_{r['target']}_after"]
        return all(r["p_target_after"] > v for v in others)

    return {
        "edits": n,
        "targets": {g: sum(r["target"] == g for r in records) for g in labels},
        "mean_p_target_before": sum(r["p_target_before"] for r in records) / n,
        "mean_p_target_after": sum(r["p_target_after"] for r in records) / n,
        "success_rate": sum(likeliest(r) for r in records) / n,
    }


def _is_group_key(key: str) -> bool:
    return key.startswith("p_") and key.endswith("_after") and key != "p_target_after"
