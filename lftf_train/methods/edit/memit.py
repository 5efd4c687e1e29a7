"""MEMIT (Meng et al. 2023): the value z at the last block of a band, then a least-squares
update of every down-projection in the band, lowest first, each taking an equal share of
what is still missing:

    ΔW_l = R_l K^T (λ C_l + K K^T)^-1,   R_l = (z - h_L(now)) / (blocks left),

K the keys at block l (the subject's last token, averaged over the bare prompt and over its
context prefixes, then between the two), C_l their second moment over a text corpus, λ
``mom2_update_weight``.
"""

from __future__ import annotations

import torch

from lftf_train.blocks import decoder_layers
from lftf_train.editing import (
    Request,
    inputs_at,
    mlp_out_weight,
    prompt_batches,
    subject_offsets,
)
from lftf_train.methods.edit.rome import keys
from lftf_train.methods.edit.values import optimise_value


def memit_update(resid, keys, second_moment, weight: float) -> torch.Tensor:
    """ΔW = R K^T (λ C + K K^T)^-1 for R (d, n) and K (d_ff, n), in float64."""
    r, k, c = resid.double(), keys.double(), second_moment.double()
    return r @ torch.linalg.solve(weight * c + k @ k.T, k).T


def block_output(model, tokenizer, text: str, offset: int, layer: int) -> torch.Tensor:
    """Block ``layer``'s output at one position of one text: (d,)."""
    layers = decoder_layers(model)[3]
    device = next(model.parameters()).device
    batch = prompt_batches(tokenizer, [text], device)
    return inputs_at(model, layers[layer + 1], batch, [offset])[0]


def edit(model, tokenizer, request: Request, target: int, blocks, templates, config, moments):
    """One MEMIT edit over ``blocks`` (ascending), applied in place; what it did."""
    texts = [t.format(request.prompt) for t in templates]
    offsets = subject_offsets(tokenizer, texts, request.subject)
    kl_text = f"{request.subject} is a"
    (kl_offset,) = subject_offsets(tokenizer, [kl_text], request.subject)
    last = blocks[-1]
    value = optimise_value(
        model, tokenizer, texts, offsets, kl_text, kl_offset, target, last, "block", config
    )
    z = value.v0 + value.delta
    for i, block in enumerate(blocks):
        k = keys(model, tokenizer, texts, offsets, block)
        key = 0.5 * k[0] + 0.5 * k[1:].mean(0) if len(k) > 1 else k[0]
        now = block_output(model, tokenizer, texts[0], offsets[0], last)
        resid = (z - now) / (len(blocks) - i)
        update = memit_update(
            resid[:, None], key[:, None], moments[block], config.mom2_update_weight
        )
        weight = mlp_out_weight(model, block)
        weight.data += update.to(weight.device, weight.dtype)
    return {"blocks": list(blocks), "value_steps": value.steps, "value_loss": value.loss}
