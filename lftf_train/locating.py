"""Locating: which decoder block matters most for the bias, and so which blocks to train.

Two locators (config.LOCATORS):

- ``bmi``: BMI_i = 1 - cos(H_i, H_i+1) per block, averaged over real tokens and prompts
  (``bmi_scores``); how much block i rotates the residual stream.
- ``skip``: how much the per-prompt bias moves when block i is removed (``skip_scores``);
  a causal measure, tied to the bias rather than to the hidden states.

Two sources for BMI's H:
- ``hidden_states``: what transformers returns with ``output_hidden_states``: the
  embeddings, then each block's output, except that the last entry comes after the final
  norm. This is what the paper's ranking reproduces (the last block on top).
- ``block_io``: each block's own input and output, from forward hooks: the block's pure
  effect on the residual stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lftf_train import data
from lftf_train.blocks import decoder_layers, num_blocks, resolve_blocks
from lftf_train.config import BMI_SOURCES, LocateConfig
from lftf_train.scoring import (
    contiguous_head_input,
    encode,
    group_logprobs,
    prompt_bias,
    target_token_ids,
)


def _token_mean_cosine(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-prompt mean over real tokens of cos(a_t, b_t): (batch,)."""
    cos = F.cosine_similarity(a.float(), b.float(), dim=-1)
    mask = mask.to(cos.dtype)
    return (cos * mask).sum(-1) / mask.sum(-1)


def _pairs_hidden_states(model, batch):
    hs = model(**batch, output_hidden_states=True, logits_to_keep=1, use_cache=False).hidden_states
    return list(zip(hs[:-1], hs[1:]))


def _pairs_block_io(model, batch):
    _, _, _, layers = decoder_layers(model)
    seen = [None] * len(layers)

    def record(i):
        def hook(module, args, kwargs, output):
            h_in = args[0] if args else kwargs["hidden_states"]
            h_out = output[0] if isinstance(output, tuple) else output
            seen[i] = (h_in, h_out)

        return hook

    handles = [
        layer.register_forward_hook(record(i), with_kwargs=True) for i, layer in enumerate(layers)
    ]
    try:
        model(**batch, logits_to_keep=1, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return seen


@torch.no_grad()
def bmi_scores(
    model, tokenizer, prompts: list[str], source: str = "hidden_states", batch_size: int = 64
) -> list[float]:
    """BMI of every block (0-based), averaged over real tokens, then over prompts."""
    if source not in BMI_SOURCES:
        raise ValueError(f"BMI source must be one of {BMI_SOURCES}, not {source!r}")
    pairs_of = _pairs_hidden_states if source == "hidden_states" else _pairs_block_io
    device = next(model.parameters()).device
    total = None
    for i in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[i : i + batch_size], device)
        cosines = torch.stack(
            [_token_mean_cosine(a, b, batch["attention_mask"]) for a, b in pairs_of(model, batch)]
        )  # (blocks, batch)
        total = cosines.sum(-1) if total is None else total + cosines.sum(-1)
    return (1.0 - total.double() / len(prompts)).tolist()


def _skip_hook(module, args, kwargs, output):
    """Forward hook that makes a block an identity: its output hidden state is its input."""
    h_in = args[0] if args else kwargs["hidden_states"]
    return (h_in, *output[1:]) if isinstance(output, tuple) else h_in


def axis_bias_fn(tokenizer, axis=None):
    """last_logits -> per-prompt bias of the axis: |P(he) - P(she)| for gender, the range
    of the group probabilities for k groups."""
    ids = target_token_ids(tokenizer, axis)
    return lambda last_logits: prompt_bias(group_logprobs(last_logits, ids))


@torch.no_grad()
def skip_scores(
    model,
    tokenizer,
    prompts: list[str],
    bias_fn=None,
    batch_size: int = 64,
    show_progress: bool = False,
    axis=None,
) -> list[float]:
    """How much removing each block (0-based) moves the bias.

    score_i = mean over prompts of |bias_without_block_i(p) - bias_full(p)|, where removing
    block i means replacing it by the identity (its output hidden state is its input, so its
    residual update is dropped). ``bias_fn(last_logits)`` maps (batch, vocab) next-token
    logits to a (batch,) bias per prompt; the default is the axis's (|P(he|p) - P(she|p)|
    for gender).
    Cost: (blocks + 1) forward passes over the prompts.
    """
    if bias_fn is None:
        bias_fn = axis_bias_fn(tokenizer, axis)
    _, _, _, layers = decoder_layers(model)
    device = next(model.parameters()).device
    batches = [
        encode(tokenizer, prompts[i : i + batch_size], device)
        for i in range(0, len(prompts), batch_size)
    ]

    def bias() -> torch.Tensor:
        out = [
            bias_fn(model(**b, logits_to_keep=1, use_cache=False).logits[:, -1]).double().cpu()
            for b in batches
        ]
        return torch.cat(out)

    with contiguous_head_input(model):
        full = bias()
        scores = []
        for layer in tqdm(layers, desc="skip locator", unit="block", disable=not show_progress):
            handle = layer.register_forward_hook(_skip_hook, with_kwargs=True)
            try:
                scores.append((bias() - full).abs().mean().item())
            finally:
                handle.remove()
    return scores


def ranking(scores: list[float]) -> list[int]:
    """Block indices, highest score (BMI or skip) first (ties: lower index first)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def seed_robustness(scores_per_seed: list[list[float]]) -> dict:
    """The paper's Table 7 check: per-block variance of BMI across seeds, and its mean."""
    table = torch.tensor(scores_per_seed, dtype=torch.float64)  # (seeds, blocks)
    variance = table.var(dim=0, unbiased=False)
    top = [ranking(s)[0] for s in scores_per_seed]
    return {
        "per_block_mean": table.mean(0).tolist(),
        "per_block_variance": variance.tolist(),
        "mean_variance": variance.mean().item(),
        "top_block_per_seed": top,
        "top_block_agreement": max(top.count(b) for b in set(top)) / len(top),
    }


def ranking_key(config: LocateConfig) -> str:
    """Which ranking blocks='auto' follows: a BMI source or 'skip'."""
    return "skip" if config.locator == "skip" else config.bmi_source


def locate_blocks(
    model,
    tokenizer,
    config: LocateConfig,
    seeds: list[int] | None = None,
    show_progress: bool = True,
    with_skip: bool | None = None,
) -> dict:
    """Per-block scores and rankings on config.locate_prompts sampled train prompts of the
    axis: BMI from both sources, and the skip locator when asked (default: when
    config.locator is 'skip'; it costs a forward pass per block). With several seeds, the
    first seed's scores and the per-block variance over seeds (the paper's Table 7)."""
    seeds = seeds or [config.seed]
    axis = config.load_axis()
    if with_skip is None:
        with_skip = config.locator == "skip"
    keys = [*BMI_SOURCES, *(["skip"] if with_skip else [])]
    scores = {key: [] for key in keys}
    jobs = [(key, seed) for seed in seeds for key in keys]
    for key, seed in tqdm(jobs, desc="locate", disable=None if show_progress else True):
        prompts = data.sample_prompts("train", config.locate_prompts, seed, axis)
        if key == "skip":
            found = skip_scores(
                model, tokenizer, prompts, batch_size=config.eval_batch_size, axis=axis
            )
        else:
            found = bmi_scores(model, tokenizer, prompts, key, config.eval_batch_size)
        scores[key].append(found)
    report = {
        "model": config.model,
        "axis": axis.name,
        "n_prompts": config.locate_prompts,
        "prompt_split": f"{axis.bias_task}/train",
        "seeds": seeds,
        "locator": config.locator,
        "bmi_source": config.bmi_source,
        "used_for_auto": ranking_key(config),
        "scores": {k: scores[k][0] for k in keys},
        "ranking": {k: ranking(scores[k][0]) for k in keys},
    }
    report["top_block"] = {k: report["ranking"][k][0] for k in keys}
    if len(seeds) > 1:
        report["scores_per_seed"] = scores
        report["robustness"] = {k: seed_robustness(scores[k]) for k in keys}
    return report


def blocks_from(config, n_blocks: int, located: dict | None) -> list[int]:
    """config.blocks (an LFTFConfig's) as block indices; 'auto' takes the top of
    ``located``'s ranking that config.locator / config.bmi_source name."""
    ranking_ = located["ranking"][ranking_key(config)] if located else None
    return resolve_blocks(config.blocks, n_blocks, ranking_, config.num_blocks)


def choose_blocks(
    model, tokenizer, config, located: dict | None = None, log=print
) -> tuple[list[int], dict | None]:
    """(blocks to train, the locate report or None): with blocks='auto', the ranking of
    ``located`` (a locate report made once for several runs) or of a new locate."""
    if config.blocks == "auto" and located is None:
        located = locate_blocks(model, tokenizer, config)
        key = ranking_key(config)
        log(f"locator {key}: top blocks {located['ranking'][key][:5]}")
    return blocks_from(config, num_blocks(model), located), located
