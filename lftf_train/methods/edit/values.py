"""The value an edit writes (ROME's v*, MEMIT's z): a vector delta added to a hidden state at
the subject's last token, optimised so that the target becomes the likely next token.

The loss is the reference's (kmeng01/rome compute_v, EasyEdit): the NLL of the target at
each rewriting prompt's last token (the request's prompt after each context prefix),
averaged over prompts, + kl_factor * KL(P_now || P_start) at the subject of the KL prompt
"{subject} is a", + v_weight_decay * |delta| / |v0|^2; Adam, an early stop when the loss
falls under 0.05, and |delta| kept within clamp_norm_factor * |v0|.

Only the tokens from the subject's last one onwards depend on delta. So each prompt is cut
there: the hidden states entering the first affected block are computed once, the tokens
before the cut run once more through the blocks above to record their keys and values, and
every optimisation step runs the model's own forward on the few tokens from the cut on,
attending to those recorded keys and values (``SplitAtSubject``; a self-check compares it
with a plain forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lftf_train.blocks import decoder_layers
from lftf_train.editing import head_of, mlp_out, per_prompt
from lftf_train.prefix import block_inputs, starting_at_block


class _RecordKV:
    """A cache that keeps every block's keys and values of one forward (the prefixes)."""

    def __init__(self):
        self.kv = {}

    def update(self, key, value, layer_idx, *args, **kwargs):
        self.kv[layer_idx] = (key, value)
        return key, value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0  # nothing is cached before the prefix


class _ReplayKV:
    """A cache that puts the recorded prefix keys and values before the new ones."""

    def __init__(self, kv: dict):
        self.kv = kv

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return next(iter(self.kv.values()))[0].shape[-2]

    def update(self, key, value, layer_idx, *args, **kwargs):
        past_key, past_value = self.kv[layer_idx]
        return torch.cat([past_key, key], dim=-2), torch.cat([past_value, value], dim=-2)


def _additive(allowed: torch.Tensor, dtype) -> torch.Tensor:
    """(b, q, kv) booleans -> the (b, 1, q, kv) additive mask attention implementations take."""
    return torch.where(allowed, 0.0, torch.finfo(dtype).min).to(dtype)[:, None]


class SplitAtSubject:
    """Prompts cut at the subject's last token, run from block ``start`` on: the part before
    the cut once (its keys and values kept), the part from the cut on at every call."""

    def __init__(self, model, tokenizer, prompts: list[str], offsets: list[int], start: int):
        self.model, self.start = model, start
        self.parent = decoder_layers(model)[1]
        states = block_inputs(model, tokenizer, prompts, start, batch_size=len(prompts))
        self.cut = [len(s) + o for s, o in zip(states, offsets)]  # subject index from the left
        self.dtype = states[0].dtype
        width = states[0].shape[-1]
        n, p = len(states), max(self.cut)
        self.lengths = [len(s) - c for s, c in zip(states, self.cut)]
        s_max = max(self.lengths)
        head = states[0].new_zeros(n, p, width)
        self.suffix = states[0].new_zeros(n, s_max, width)
        for i, (state, cut) in enumerate(zip(states, self.cut)):
            head[i, p - cut :] = state[:cut]
            self.suffix[i, : len(state) - cut] = state[cut:]
        q, k = torch.arange(s_max)[:, None], torch.arange(s_max)[None, :]
        real_q = torch.tensor([[a < n_i for a in range(s_max)] for n_i in self.lengths])
        own = (k <= q) & (k < torch.tensor(self.lengths)[:, None, None])
        own = torch.where(real_q[:, :, None], own, q == k)  # padding attends to itself only
        self.positions = torch.tensor(self.cut)[:, None] + torch.arange(s_max)[None]
        self.kv = {}
        if p > 0:
            real_head = torch.arange(p)[None] >= (p - torch.tensor(self.cut))[:, None]
            before = real_head[:, None, :] & real_q[:, :, None]
            self.mask = _additive(torch.cat([before, own], dim=-1), self.dtype)
            self.kv = self._record(head, real_head)
        else:
            self.mask = _additive(own, self.dtype)

    @torch.no_grad()
    def _record(self, head: torch.Tensor, real: torch.Tensor) -> dict:
        p = head.shape[1]
        q, k = torch.arange(p)[:, None], torch.arange(p)[None, :]
        allowed = (k <= q) & real[:, None, :]
        allowed = torch.where(real[:, :, None], allowed, q == k)
        positions = (torch.arange(p)[None] - (p - torch.tensor(self.cut))[:, None]).clamp(min=0)
        cache = _RecordKV()
        self._run(head, _additive(allowed, self.dtype), positions, cache)
        return cache.kv

    def _run(self, embeds, mask, positions, cache):
        device = next(self.model.parameters()).device
        with starting_at_block(self.model, self.start):
            return self.parent(
                inputs_embeds=embeds.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                cache=cache,
                use_cache=False,
            ).last_hidden_state

    def hidden(self, suffix: torch.Tensor | None = None) -> torch.Tensor:
        """The final hidden states (after the final norm) of the tokens from the cut on:
        (prompts, longest suffix, d); ``suffix`` replaces the states entering block start."""
        cache = _ReplayKV(self.kv) if self.kv else None
        embeds = self.suffix if suffix is None else suffix
        return self._run(embeds, self.mask, self.positions, cache)

    def last(self, hidden: torch.Tensor) -> torch.Tensor:
        """Each prompt's last token's row of ``hidden``: (prompts, d)."""
        rows = torch.arange(len(self.lengths))
        return hidden[rows, torch.tensor(self.lengths) - 1]


@dataclass
class ValueResult:
    v0: torch.Tensor  # the hidden state before the edit, at the bare prompt's subject
    delta: torch.Tensor
    steps: int  # Adam steps taken
    loss: float  # the last loss evaluated


def optimise_value(
    model, tokenizer, texts, offsets, kl_text, kl_offset, target: int, layer: int, at: str, config
) -> ValueResult:
    """delta at block ``layer``: added to its MLP's output (``at='mlp'``, ROME) or to the
    block's output (``at='block'``, MEMIT), at the subject's last token of every prompt.
    ``texts[0]`` is the bare prompt; ``offsets`` count positions from the end."""
    layers = decoder_layers(model)[3]
    start = layer if at == "mlp" else layer + 1
    if start >= len(layers):
        raise ValueError(f"block {layer} is the last one; its output feeds no block to run")
    split = SplitAtSubject(model, tokenizer, [*texts, kl_text], [*offsets, kl_offset], start)
    delta = torch.zeros(split.suffix.shape[-1], requires_grad=True)
    head, state = head_of(model)[1], {}

    def add_delta(module, args, output):  # the subject is the first token after the cut
        shaped = per_prompt(output, len(split.suffix))  # OPT's MLP sees tokens flattened
        state.setdefault("v0", shaped[0, 0].detach().clone())
        shaped = shaped.clone()
        shaped[:, 0] = shaped[:, 0] + delta.to(shaped.dtype)
        return shaped.view(output.shape)

    def logits():
        suffix = None
        if at == "block":
            state.setdefault("v0", split.suffix[0, 0].clone())
            suffix = split.suffix.clone()
            suffix[:, 0] = suffix[:, 0] + delta.to(suffix.dtype)
        hidden = split.hidden(suffix)
        return head(split.last(hidden)[:-1]).float(), head(hidden[-1, 0]).float()

    handle = mlp_out(model, layer).register_forward_hook(add_delta) if at == "mlp" else None
    try:
        return _descend(logits, delta, state, target, config)
    finally:
        if handle is not None:
            handle.remove()


def _descend(logits, delta, state, target: int, config) -> ValueResult:
    optimizer = torch.optim.Adam([delta], lr=config.v_lr)
    kl_start, steps = None, 0
    for it in range(config.v_num_grad_steps):
        rewrite, kl_logits = logits()
        logp = F.log_softmax(rewrite, -1)
        kl_logp = F.log_softmax(kl_logits, -1)
        if kl_start is None:
            kl_start = kl_logp.detach()
        kl = (kl_logp.exp() * (kl_logp - kl_start)).sum()
        v0_norm = state["v0"].float().norm()
        loss = (
            -logp[:, target].mean()
            + config.kl_factor * kl
            + config.v_weight_decay * delta.norm() / v0_norm**2
        )
        if loss.item() < 5e-2 or it == config.v_num_grad_steps - 1:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
        with torch.no_grad():
            max_norm = config.clamp_norm_factor * v0_norm
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    return ValueResult(state["v0"].float(), delta.detach(), steps, loss.item())
