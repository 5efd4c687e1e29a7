"""Locating: BMI_i = 1 - cos(H_i, H_i+1) per block, averaged over real tokens and prompts.

Two sources for H:
- ``hidden_states``: what transformers returns with ``output_hidden_states``: the
  embeddings, then each block's output, except that the last entry comes after the final
  norm. This is what the paper's ranking reproduces (the last block on top).
- ``block_io``: each block's own input and output, from forward hooks: the block's pure
  effect on the residual stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lftf_train.blocks import decoder_layers
from lftf_train.scoring import encode

SOURCES = ("hidden_states", "block_io")


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
    if source not in SOURCES:
        raise ValueError(f"BMI source must be one of {SOURCES}, not {source!r}")
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


def ranking(scores: list[float]) -> list[int]:
    """Block indices, highest BMI first (ties: lower index first)."""
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
