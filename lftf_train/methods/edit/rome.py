"""ROME (Meng et al. 2022) and R-ROME (Gupta et al. 2024): one rank-one edit of an MLP's
down-projection W so that the subject's key maps to a value that makes the target likely.

    ΔW = (v* - W k) u^T / (u^T k),   so that (W + ΔW) k = v*,

with k* the key (the down-projection's input at the subject's last token) averaged over the
prompt and its context prefixes, u = k* (or C^-1 k* with the second-moment adjustment), and
v* = v0 + delta from ``values``. ROME, as its reference code, puts the key of the bare
prompt in the numerator's W k and the denominator; R-ROME's fix uses the averaged key k*
in both (and so maps k* itself to v*).
"""

from __future__ import annotations

import torch

from lftf_train.editing import (
    Request,
    inputs_at,
    mlp_out,
    mlp_out_weight,
    prompt_batches,
    second_moments,
    subject_offsets,
)
from lftf_train.methods.edit.prepared import Prepared
from lftf_train.methods.edit.values import optimise_value


def prepare(model, tokenizer, config, blocks, corpus_fn, requests_fn, log, show_progress):
    """ROME's and MEMIT's preparation: with ``mom2_adjustment``, the second moment C of
    each edited block's keys over the sampled corpus ({block: C}); else nothing."""
    if not config.mom2_adjustment:
        return Prepared()
    return Prepared(second_moments(model, tokenizer, corpus_fn(), blocks))


def rank_one_update(weight, key, value, left) -> torch.Tensor:
    """ΔW = (value - W key) left^T / (left^T key), in float64: (W + ΔW) key = value."""
    w, k, v, u = (t.double() for t in (weight, key, value, left))
    return torch.outer(v - w @ k, u) / (u @ k)


def keys(model, tokenizer, texts, offsets, layer: int) -> torch.Tensor:
    """The down-projection's input at the subject's last token of each text: (n, d_ff)."""
    device = next(model.parameters()).device
    batches = prompt_batches(tokenizer, texts, device, batch_size=len(texts))
    return inputs_at(model, mlp_out(model, layer), batches, offsets)


def edit(
    model,
    tokenizer,
    request: Request,
    target: int,
    blocks,
    templates,
    config,
    moments,
    averaged_key: bool = False,
):
    """One ROME edit of ``blocks[0]`` (``averaged_key``: R-ROME's), applied in place; what
    it did. ``moments``: {block: C} with the second-moment adjustment, else None."""
    layer = blocks[0]
    moment = moments[layer] if moments is not None else None
    texts = [t.format(request.prompt) for t in templates]
    offsets = subject_offsets(tokenizer, texts, request.subject)
    k = keys(model, tokenizer, texts, offsets, layer)
    k_star = k.mean(0)
    left = torch.linalg.solve(moment, k_star.double()) if moment is not None else k_star.double()
    kl_text = f"{request.subject} is a"
    (kl_offset,) = subject_offsets(tokenizer, [kl_text], request.subject)
    value = optimise_value(
        model, tokenizer, texts, offsets, kl_text, kl_offset, target, layer, "mlp", config
    )
    key = k_star if averaged_key else k[0]  # the bare prompt is texts[0]
    weight = mlp_out_weight(model, layer)
    update = rank_one_update(weight.detach().cpu(), key, value.v0 + value.delta, left / left.norm())
    weight.data += update.to(weight.device, weight.dtype)
    return {"blocks": [layer], "value_steps": value.steps, "value_loss": value.loss}
