"""Train from the first trained block up: the hidden state entering it is cached once.

Blocks below the first trained block are frozen, so what enters it is a fixed function of
the prompt. We record it once per prompt (a forward pre-hook that stops the forward) and
afterwards run the model's own forward with ``inputs_embeds`` set to that state (handed to
the first remaining block unchanged) and its block list cut to the blocks from there up.
Masks, rotary embeddings, the final norm and the head stay the model's own code;
``verify_prefix_cache`` checks the result against a full forward before training starts.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from lftf_tasks.axis import Axis
from lftf_train.blocks import decoder_layers, text_config
from lftf_train.capture import module_inputs
from lftf_train.data import training_prompts
from lftf_train.scoring import encode, group_logprobs


@torch.no_grad()
def block_inputs(model, tokenizer, prompts: list[str], block: int, batch_size: int = 64):
    """The hidden state entering ``block`` for each prompt: a list of (tokens, hidden)."""
    _, _, _, layers = decoder_layers(model)
    device = next(model.parameters()).device
    states = []
    for i in range(0, len(prompts), batch_size):
        batch = encode(tokenizer, prompts[i : i + batch_size], device)
        (hidden,) = module_inputs(model, [layers[block]], batch)
        for row, mask in zip(hidden, batch["attention_mask"]):
            states.append(row[mask.bool()].detach().clone())
    return states


@dataclass
class PrefixCache:
    """The hidden states entering ``block`` for every prompt fine-tuning sees (per split, as
    data.training_prompts names them), reusable by every fine-tuning of the same axis whose
    first trained block is ``block``: the blocks below it stay frozen."""

    block: int
    axis: str
    states: dict[str, list[torch.Tensor]]  # split -> one (tokens, hidden) tensor per prompt

    @classmethod
    def build(cls, model, tokenizer, block: int, axis: Axis, batch_size: int = 64):
        states = {
            split: block_inputs(model, tokenizer, prompts, block, batch_size)
            for split, prompts in training_prompts(axis).items()
        }
        return cls(block=block, axis=axis.name, states=states)

    def serves(self, block: int, axis: Axis) -> bool:
        return (self.block, self.axis) == (block, axis.name)


@contextmanager
def starting_at_block(model: nn.Module, block: int):
    """Temporarily cut the model's block list (and per-layer config lists) to blocks[block:],
    so that ``inputs_embeds`` given to the model is exactly what enters block ``block``.

    Families differ in what their forward does to ``inputs_embeds`` before the first block
    (GPT-2 and OPT add position embeddings, Gemma scales, OPT projects): whatever it did,
    the first remaining block receives the ``inputs_embeds`` the model was called with.
    """
    _, parent, attr, layers = decoder_layers(model)
    config = text_config(model)
    layer_types = getattr(config, "layer_types", None)
    given = {}

    def keep(module, args, kwargs):
        given["embeds"] = kwargs.get("inputs_embeds")

    def replace(module, args, kwargs):
        if given.get("embeds") is None:
            return None
        if args:
            return (given["embeds"], *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": given["embeds"]}

    setattr(parent, attr, nn.ModuleList(list(layers)[block:]))
    if isinstance(layer_types, list) and len(layer_types) == len(layers):
        config.layer_types = layer_types[block:]
    handles = [
        parent.register_forward_pre_hook(keep, with_kwargs=True),
        layers[block].register_forward_pre_hook(replace, with_kwargs=True),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        setattr(parent, attr, layers)
        if isinstance(layer_types, list):
            config.layer_types = layer_types


def collate(states: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Left-pad cached states into inputs_embeds, attention_mask and position_ids."""
    longest = max(s.shape[0] for s in states)
    hidden = states[0].new_zeros(len(states), longest, states[0].shape[-1])
    mask = torch.zeros(len(states), longest, dtype=torch.long, device=states[0].device)
    for i, s in enumerate(states):
        hidden[i, longest - s.shape[0] :] = s
        mask[i, longest - s.shape[0] :] = 1
    return {
        "inputs_embeds": hidden,
        "attention_mask": mask,
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
    }


def last_logits_from_block(model, unwrapped, states: list[torch.Tensor], block: int):
    """Next-token logits (batch, vocab) computed from cached states entering ``block``.

    ``model`` is what to call (it may be a DDP wrapper); ``unwrapped`` is the module whose
    block list is cut.
    """
    with starting_at_block(unwrapped, block):
        out = model(**collate(states), logits_to_keep=1, use_cache=False)
    return out.logits[:, -1]


@torch.no_grad()
def verify_prefix_cache(model, tokenizer, prompts, block, group_ids):
    """Raise if running from cached states would not compute what a full forward computes.

    Both sides use the same batch, so padding is identical and any difference comes from
    the replay itself, not from 16-bit rounding under another batch shape.
    """
    atol = 1e-4 if next(model.parameters()).dtype == torch.float32 else 2e-2
    batch = encode(tokenizer, prompts, next(model.parameters()).device)
    full = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
    states = block_inputs(model, tokenizer, prompts, block, batch_size=len(prompts))
    cached = last_logits_from_block(model, model, states, block)
    diff = (group_logprobs(full, group_ids) - group_logprobs(cached, group_ids)).abs()
    if diff.max().item() > atol:
        raise RuntimeError(
            f"prefix cache mismatch ({diff.max().item():.2e} > {atol}) for "
            f"{type(model).__name__}: this architecture changes inputs_embeds inside its "
            "forward; train with --naive (a full forward per step)"
        )
