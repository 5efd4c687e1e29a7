"""Capability kept, measured offline: does the debiased model still behave like the original?

- Next-token agreement and KL(original || debiased) on neutral prompts (facts, everyday
  text, code, arithmetic) that mention no person.
- Perplexity on a neutral text (an essay on the water cycle written for this package).

Both ship with the package (``lftf_train/assets``), so they need no model hub. They say
how far a method moved the model away from the original on text unrelated to gender; with
the hub, lm-eval's general tasks (``--general-tasks mmlu,...``) say more.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lftf_train.families import max_positions
from lftf_train.scoring import contiguous_head_input, encode

ASSETS = Path(__file__).parent / "assets"


def neutral_prompts() -> list[str]:
    return (ASSETS / "neutral_prompts.txt").read_text(encoding="utf-8").splitlines()


def neutral_text() -> str:
    return (ASSETS / "neutral_text.txt").read_text(encoding="utf-8")


@torch.no_grad()
def next_token_logprobs(
    model, tokenizer, prompts: list[str], prefix: str = "", batch_size: int = 32
) -> torch.Tensor:
    """Full next-token log-distribution after each prompt: (n, vocab), float32 on CPU."""
    device = next(model.parameters()).device
    out = []
    with contiguous_head_input(model):
        for i in range(0, len(prompts), batch_size):
            batch = encode(tokenizer, [prefix + p for p in prompts[i : i + batch_size]], device)
            logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
            out.append(logits.float().log_softmax(-1).cpu())
    return torch.cat(out)


def agreement_and_kl(reference: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Top-1 agreement and mean KL(reference || other) of two (n, vocab) log-distributions."""
    agree = (reference.argmax(-1) == other.argmax(-1)).double().mean().item()
    kl = (reference.exp() * (reference - other)).sum(-1).clamp(min=0).mean().item()
    return {"next_token_agreement": agree, "kl": kl}


@torch.no_grad()
def perplexity(model, tokenizer, text: str, context: str = "", window: int = 1024) -> float:
    """Token perplexity of ``text`` (after an optional ``context`` that is not scored).

    The text is scored in consecutive windows of ``window`` tokens, each after the context,
    fewer where the model has fewer positions.
    """
    device = next(model.parameters()).device
    context_ids = tokenizer(context, add_special_tokens=False).input_ids if context else []
    limit = max_positions(model)
    if limit is not None:
        window = min(window, limit - len(context_ids))
    ids = tokenizer(text).input_ids
    nll, count = 0.0, 0
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        inputs = torch.tensor([context_ids + chunk], device=device)
        logp = model(input_ids=inputs, use_cache=False).logits[0, :-1].float().log_softmax(-1)
        targets = inputs[0, 1:]
        first = max(len(context_ids), 1) - 1  # score only the text's tokens
        picked = logp[first:].gather(-1, targets[first:, None])
        nll -= picked.sum().item()
        count += picked.numel()
    return math.exp(nll / count)
