"""Where next-token logits come from: a full forward of each prompt (``FullForward``) or the
hidden states cached at the first changed block (``FromPrefixCache``); scoring a whole split
and the dev metrics, for the trainer and the editors alike."""

from __future__ import annotations

import torch

from lftf_tasks.axis import Axis
from lftf_train import data
from lftf_train.prefix import PrefixCache, last_logits_from_block
from lftf_train.scoring import axis_scores, encode, group_logprobs, hinted_groups, slope_scores


class FullForward:
    """Next-token logits of chosen prompts from a full forward pass (naive=True)."""

    def __init__(self, tokenizer, prompts: dict[str, list[str]], device):
        self.tokenizer, self.prompts, self.device = tokenizer, prompts, device

    def size(self, split: str) -> int:
        return len(self.prompts[split])

    def logits(self, net, split: str, indices: list[int]) -> torch.Tensor:
        batch = encode(self.tokenizer, [self.prompts[split][i] for i in indices], self.device)
        return net(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]


class FromPrefixCache:
    """Next-token logits of chosen prompts computed from the cached states entering the
    first trained block (the default). ``model`` is the module whose block list is cut; the
    ``net`` called may wrap it (DDP)."""

    def __init__(self, cache: PrefixCache, model):
        self.cache, self.model = cache, model

    def size(self, split: str) -> int:
        return len(self.cache.states[split])

    def logits(self, net, split: str, indices: list[int]) -> torch.Tensor:
        states = [self.cache.states[split][i] for i in indices]
        return last_logits_from_block(net, self.model, states, self.cache.block)


@torch.no_grad()
def score_split(model, source, split: str, group_ids, batch_size: int) -> torch.Tensor:
    """log P(group) for every prompt of a split, in order: (n, groups)."""
    out = []
    for start in range(0, source.size(split), batch_size):
        indices = list(range(start, min(start + batch_size, source.size(split))))
        out.append(group_logprobs(source.logits(model, split, indices), group_ids))
    return torch.cat(out).cpu()


def evaluate_dev(model, source, axis: Axis, group_ids, batch_size: int) -> dict[str, float]:
    """The axis's metrics on its bias dev split (with its stereotype slopes, if it has them)
    and, for the hint metric, on its hint dev split: what lm-eval's ``<bias>_dev`` and
    ``<hint>_dev`` tasks report for the same model."""
    hinted = hinted_groups(axis, data.hint_records("dev", axis))
    bias = score_split(model, source, "dev", group_ids, batch_size)
    hint = score_split(model, source, "hint", group_ids, batch_size)
    slopes = slope_scores(bias, data.bias_records("dev", axis), axis)
    return {**axis_scores(bias, hint, hinted, axis), **slopes}
