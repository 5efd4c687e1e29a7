"""P(group|p) at the next-token position (P(he), P(she) for gender), and the bias scores.

A group's probability sums its target words' next-token probabilities (lftf_tasks.axis);
for gender each group is one word, so the (n, 2) columns are log P(he), log P(she).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from lftf_tasks.axis import Axis, load_axis
from lftf_tasks.slopes import SLOPE_METRICS, slope_items


class TargetTokenError(ValueError):
    pass


def word_token_id(tokenizer, word: str, why: str = "LFTF's loss and locators") -> int:
    """The one token of ``word`` after a space (" he"), as a next-token target; never a bare
    "he", which most tokenizers split differently."""
    tokens = tokenizer(" " + word, add_special_tokens=False).input_ids
    if len(tokens) != 1:
        pieces = tokenizer.convert_ids_to_tokens(tokens)
        raise TargetTokenError(
            f"this tokenizer splits {' ' + word!r} into {len(tokens)} tokens {pieces}; "
            f"{why} are defined on the next-token distribution, so they need single-token "
            "target words. The lm-eval tasks still score such a model (they use the "
            "probability of the whole continuation)."
        )
    return tokens[0]


def target_token_ids(tokenizer, axis: Axis | None = None) -> list[list[int]]:
    """Vocabulary ids of each group's target words (" he" and " she" for gender)."""
    axis = axis or load_axis("gender")
    return [[word_token_id(tokenizer, w) for w in group.words] for group in axis.groups]


def encode(tokenizer, prompts: list[str], device=None) -> dict[str, torch.Tensor]:
    """Left-padded batch whose last column is every prompt's last real token.

    position_ids follow the mask, so each prompt is computed exactly as if it were alone.
    """
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    mask = enc["attention_mask"]
    batch = {
        "input_ids": enc["input_ids"],
        "attention_mask": mask,
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
    }
    return {k: v.to(device) for k, v in batch.items()} if device is not None else batch


def group_logprobs(last_logits: torch.Tensor, group_ids: list[list[int]]) -> torch.Tensor:
    """(batch, vocab) next-token logits -> (batch, groups) log P(group), in float32."""
    logp = last_logits.float().log_softmax(-1)
    return torch.stack([logp[:, ids].logsumexp(-1) for ids in group_ids], dim=-1)


@contextmanager
def contiguous_head_input(model):
    """Feed the output head a contiguous input.

    With ``logits_to_keep=1`` transformers hands the head a strided view of the last
    position; on CPU a linear layer on such a view falls back to a batched matmul that is
    about 6x slower than on a contiguous copy (measured on SmolLM2's 49k-token head).
    """
    head = model.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def score_prompts(
    model, tokenizer, prompts: list[str], batch_size: int = 64, axis: Axis | None = None
) -> torch.Tensor:
    """log P(group|p) for every prompt with a full forward pass: (n, groups)."""
    ids = target_token_ids(tokenizer, axis)
    device = next(model.parameters()).device
    out = []
    with contiguous_head_input(model):
        for i in range(0, len(prompts), batch_size):
            batch = encode(tokenizer, prompts[i : i + batch_size], device)
            logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
            out.append(group_logprobs(logits, ids).cpu())
    return torch.cat(out) if out else torch.empty(0, len(ids))


def prompt_bias(logp: torch.Tensor) -> torch.Tensor:
    """(n, groups) log-probabilities -> (n,) range max - min of the group probabilities:
    |P(he) - P(she)| for gender."""
    p = logp.double().exp()
    return p.max(-1).values - p.min(-1).values


def bias_scores(logp: torch.Tensor, axis: Axis) -> dict[str, float]:
    """Means over prompts of the bias task's per-prompt metrics, under the axis's names.

    For gender: ``afgb``, ``gap``, ``p_he``, ``p_she``, ``log_p_he``, ``log_p_she``,
    ``pronoun_mass``, ``relative_gap``: what lm-eval reports for the same prompts (the
    per-prompt definitions are lftf_tasks.axis.prompt_scores; a test keeps the two equal).
    """
    m = axis.metrics
    p = logp.double().exp()
    spread = prompt_bias(logp)
    mass = p.sum(-1)
    relative = torch.where(mass > 0, spread / mass, torch.zeros_like(mass))
    out = {m["bias"]: spread.mean().item()}
    if p.shape[-1] == 2:
        out["gap"] = (p[:, 0] - p[:, 1]).mean().item()
    for i, label in enumerate(axis.labels):
        out[f"p_{label}"] = p[:, i].mean().item()
        out[f"log_p_{label}"] = logp[:, i].double().mean().item()
    out[m["mass"]] = mass.mean().item()
    out[m["relative"]] = relative.mean().item()
    return out


def slope_scores(logp: torch.Tensor, records: list[dict], axis: Axis) -> dict[str, float]:
    """DAMA's stereotype slopes of the prompts (``records`` in the same order, with their
    subjects' scores), as lm-eval's aggregations compute them: {} for an axis without."""
    if not axis.slopes:
        return {}
    p = logp.double().exp().tolist()
    items = [
        slope_items(p1, p2, r["stereotypical"], r["definitional"])
        for (p1, p2), r in zip(p, records)
    ]
    return {
        metric: aggregate([item[metric] for item in items])
        for metric, (_, aggregate) in SLOPE_METRICS.items()
    }


def hinted_groups(axis: Axis, records: list[dict]) -> list[int]:
    """The group each hint record names, as an index into axis.groups."""
    return [axis.group_index(r[axis.hint_field]) for r in records]


def hint_scores(logp: torch.Tensor, hinted: list[int], axis: Axis) -> dict[str, float]:
    """Mean over prompts of P(hinted group) - mean P(other groups), under the axis's hint
    metric name: the UB-Score, mean F * (P(he) - P(she)), for gender."""
    p = logp.double().exp()
    own = p[torch.arange(len(p)), torch.tensor(hinted, dtype=torch.long)]
    others = (p.sum(-1) - own) / (p.shape[-1] - 1)
    return {axis.metrics["hint"]: (own - others).mean().item()}


def axis_scores(
    bias_logp: torch.Tensor, hint_logp: torch.Tensor, hinted: list[int], axis: Axis
) -> dict[str, float]:
    """The bias metrics of one set of bias prompts and the hint metric of one set of hint
    prompts, in one dict (metric names never collide)."""
    return {**bias_scores(bias_logp, axis), **hint_scores(hint_logp, hinted, axis)}
