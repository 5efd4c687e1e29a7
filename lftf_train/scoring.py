"""P(he|p) and P(she|p) at the next-token position, and the bias scores built from them."""

from __future__ import annotations

from contextlib import contextmanager

import torch

PRONOUNS = (" he", " she")


class PronounTokenError(ValueError):
    pass


def pronoun_token_ids(tokenizer) -> tuple[int, int]:
    """Vocabulary ids of " he" and " she"; LFTF needs each to be one token."""
    ids = []
    for word in PRONOUNS:
        tokens = tokenizer(word, add_special_tokens=False).input_ids
        if len(tokens) != 1:
            pieces = tokenizer.convert_ids_to_tokens(tokens)
            raise PronounTokenError(
                f"this tokenizer splits {word!r} into {len(tokens)} tokens {pieces}; LFTF's "
                "loss and BMI are defined on the next-token distribution, so they need "
                "single-token pronouns. The lm-eval tasks still score such a model (they use "
                "the probability of the whole continuation)."
            )
        ids.append(tokens[0])
    return ids[0], ids[1]


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


def pronoun_logprobs(last_logits: torch.Tensor, pronoun_ids: tuple[int, int]) -> torch.Tensor:
    """(batch, vocab) next-token logits -> (batch, 2) log P(he), log P(she), in float32."""
    return last_logits.float().log_softmax(-1)[:, list(pronoun_ids)]


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
def score_prompts(model, tokenizer, prompts: list[str], batch_size: int = 64) -> torch.Tensor:
    """log P(he|p), log P(she|p) for every prompt with a full forward pass: (n, 2)."""
    ids = pronoun_token_ids(tokenizer)
    device = next(model.parameters()).device
    out = []
    with contiguous_head_input(model):
        for i in range(0, len(prompts), batch_size):
            batch = encode(tokenizer, prompts[i : i + batch_size], device)
            logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
            out.append(pronoun_logprobs(logits, ids).cpu())
    return torch.cat(out) if out else torch.empty(0, 2)


def bias_scores(logp: torch.Tensor) -> dict[str, float]:
    """Mean AFGB, signed gap, pronoun mass and relative gap over prompts."""
    p = logp.double().exp()
    gap = p[:, 0] - p[:, 1]
    mass = p.sum(-1)
    relative = torch.where(mass > 0, gap.abs() / mass, torch.zeros_like(mass))
    return {
        "afgb": gap.abs().mean().item(),
        "gap": gap.mean().item(),
        "p_he": p[:, 0].mean().item(),
        "p_she": p[:, 1].mean().item(),
        "pronoun_mass": mass.mean().item(),
        "relative_gap": relative.mean().item(),
    }


def ub_score(logp: torch.Tensor, hints: list[str]) -> float:
    """Mean F * (P(he) - P(she)), F = +1 for "his", -1 for "her"."""
    p = logp.double().exp()
    sign = torch.tensor([1.0 if h == "his" else -1.0 for h in hints], dtype=torch.float64)
    return (sign * (p[:, 0] - p[:, 1])).mean().item()
