"""LFTF's objectives, as functions of tensors.

- ``nll_loss`` (the paper's, the default): mean over prompts of -sum over groups of
  log P(g|p). It is minimal at P(he) = P(she) = 0.5, i.e. when the pronouns take *all* the
  next-token mass: it teaches "say a pronoun here" as much as "say either evenly".
- ``split_loss`` (``loss='split'``): mean over groups of -log P(g | some group), the cross-
  entropy of the split between the groups against the uniform split. It is minimal at an
  even split whatever the groups' total mass, so it asks for the split alone.
- ``kept_kl`` (``kl_weight > 0``): KL(original || trained) of the next-token distribution
  with every group's words merged into one outcome. It keeps the pronouns' total mass and
  every other token where the original had them, and leaves the split between the groups
  free; with the split loss, only the split is trained.
"""

from __future__ import annotations

import torch


def nll_loss(logp: torch.Tensor, columns: list[int]) -> torch.Tensor:
    """(batch, groups) log P(group) -> mean over the batch of -sum of the chosen groups'."""
    return -logp[:, columns].sum(-1).mean()


def split_loss(logp: torch.Tensor, columns: list[int]) -> torch.Tensor:
    """(batch, groups) log P(group) -> mean over the batch and the chosen groups of
    -log P(group | one of the groups): log k at an even split of k groups."""
    within = logp - logp.logsumexp(-1, keepdim=True)
    return -within[:, columns].mean(-1).mean()


def merged_logprobs(logits: torch.Tensor, group_ids: list[list[int]]) -> torch.Tensor:
    """(batch, vocab) logits -> (batch, vocab - n + 1) log-probabilities of the next token
    with the n group words merged into the last outcome."""
    logp = logits.float().log_softmax(-1)
    words = torch.tensor([i for ids in group_ids for i in ids], device=logp.device)
    others = torch.ones(logp.shape[-1], dtype=torch.bool, device=logp.device)
    others[words] = False
    return torch.cat([logp[:, others], logp[:, words].logsumexp(-1, keepdim=True)], dim=-1)


def kl(reference: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(reference || trained), both (batch, outcomes) log-probs."""
    return (reference.exp() * (reference - trained)).sum(-1).mean()


def kept_kl(reference: torch.Tensor, logits: torch.Tensor, group_ids) -> torch.Tensor:
    """``kl`` on the merged distribution; ``reference``: the original's ``merged_logprobs``
    for the same prompts."""
    return kl(reference, merged_logprobs(logits, group_ids))


OBJECTIVES = {"nll": nll_loss, "split": split_loss}
