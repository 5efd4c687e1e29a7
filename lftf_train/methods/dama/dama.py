"""DAMA: Debiasing Algorithm through Model Adaptation (Limisiewicz, Mareček, Musil, ICLR 2024),
as its reference code's published run scripts configure it (tomlimi/DAMA).

1. Value vectors, once, on the unedited model: for every request (a GenBiasEval-train
   prompt) and every pronoun g in " he", " she", " they", a vector delta_g is added, with a
   shared vector delta_0, to the last block's output at the prompt's last position, and
   optimised so that g becomes likely (NLL), the distribution after "{subject} is a" stays
   (KL) and the vector stays small (a norm penalty), within a norm ball. delta_0 absorbs what
   the pronouns share and is dropped: V_g = delta_g. The logits of h + delta are the final
   norm and head applied to it, so h is computed once and no block runs in this step.
2. For each edited layer, in ascending order, on the model as already projected: U = the
   input of the MLP's down-projection at each prompt's last position, X = U W^T (the MLP's
   output there), a PLS regression of Y = [V_he; V_she; V_they] on X with k components,
   Q = an orthonormal basis of its x-weights, and W <- (I - Q Q^T) W: the MLP can no longer
   write along the directions that carried the pronoun values.

The closed forms are pure tensor functions (``pls_directions``, ``project_output``,
``whiten``); the model plumbing (cached states, hooks) stays apart. The rank k and the layer
set are chosen on the dev splits (``choose``).
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cross_decomposition import PLSRegression

from lftf_train.blocks import num_blocks
from lftf_train.editing import (
    final_input_module,
    frozen,
    head_of,
    inputs_at,
    mlp_out,
    mlp_out_weight,
    prompt_batches,
    requests,
    word_ids,
)
from lftf_train.logits import FromPrefixCache, evaluate_dev
from lftf_train.methods.dama.config import DAMAConfig
from lftf_train.prefix import PrefixCache, collate, starting_at_block
from lftf_train.scoring import target_token_ids
from lftf_train.tables import span

# --- the closed forms ------------------------------------------------------------------


def pls_directions(x: torch.Tensor, y: torch.Tensor, rank: int) -> torch.Tensor:
    """Q (d, k): an orthonormal basis of the x-weights of a PLS regression of y on x with
    ``rank`` components (scikit-learn, unscaled, as the reference), rank-cut like
    scipy.linalg.orth. rank 0 gives an empty basis."""
    if rank == 0:
        return x.new_zeros(x.shape[1], 0)
    if rank > min(x.shape):
        raise ValueError(
            f"DAMAConfig.ranks: rank {rank} exceeds what PLS can find from {x.shape[0]} value "
            f"rows in {x.shape[1]} dimensions (at most {min(x.shape)}); choose lower ranks "
            "(--ranks) or use more requests (--requests)"
        )
    pls = PLSRegression(n_components=rank, scale=False, tol=1e-4, max_iter=500)
    pls.fit(x.double().numpy(), y.double().numpy())
    weights = pls.x_weights_[:, :rank]
    u, s, _ = np.linalg.svd(weights, full_matrices=False)
    keep = s > s.max() * max(weights.shape) * np.finfo(float).eps
    return torch.from_numpy(u[:, keep]).to(x.dtype)


def output_projection(q: torch.Tensor) -> torch.Tensor:
    """P = I - Q Q^T: symmetric, idempotent, of rank d - k; P Q = 0."""
    return torch.eye(q.shape[0], dtype=q.dtype) - q @ q.T


def project_output(weight: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(I - Q Q^T) W: the projection's outputs have no component along Q. With k = 0 the
    weight comes back untouched (the same tensor, bit for bit)."""
    if q.shape[1] == 0:
        return weight
    q = q.to(weight.device, torch.float64)
    return (weight.double() - q @ (q.T @ weight.double())).to(weight.dtype)


def whiten(u: torch.Tensor, second_moment: torch.Tensor, weight: float) -> torch.Tensor:
    """U (lambda C + U^T U)^-1, the reference's optional whitening of the keys."""
    u64 = u.double()
    system = weight * second_moment.double() + u64.T @ u64
    return torch.linalg.solve(system, u64.T).T.to(u.dtype)


# --- step 1: the value vectors --------------------------------------------------------


def last_block_outputs(model, tokenizer, prompts: list[str], batch_size: int) -> torch.Tensor:
    """The last block's output (before the final norm) at each prompt's last token: (n, d)."""
    device = next(model.parameters()).device
    batches = prompt_batches(tokenizer, prompts, device, batch_size)
    return inputs_at(model, final_input_module(model), batches, [-1] * len(prompts)).to(device)


def value_loss(
    model, h: torch.Tensor, h_kl: torch.Tensor, delta: torch.Tensor, target: int, kl_init, config
) -> torch.Tensor:
    """Per request: -log P(target | h + delta) + kl * KL(P(. | h_kl + delta) || P_init)
    + wd * |delta|^2 / |h|, with the logits the final norm and head of the shifted state."""
    norm, head = head_of(model)
    dtype = head.weight.dtype
    logp = F.log_softmax(head(norm((h + delta).to(dtype))).float(), -1)
    kl_logp = F.log_softmax(head(norm((h_kl + delta).to(dtype))).float(), -1)
    kl = (kl_logp.exp() * (kl_logp - kl_init)).sum(-1)
    decay = delta.norm(dim=-1) ** 2 / h.norm(dim=-1)
    return -logp[:, target] + config.kl_factor * kl + config.v_weight_decay * decay


def optimise_values(model, h, h_kl, targets: list[int], config, generator) -> torch.Tensor:
    """delta_g for each target (T, n, d) of a batch of requests, optimised as the reference
    does: one Adam over (delta_g..., delta_0); each iteration zeroes the gradients once and
    then, for the targets in a shuffled order, backpropagates that target's loss and steps
    (so gradients add up within an iteration); requests whose loss fell under 0.05 get no
    further gradient; |delta_g + delta_0| is clamped to clamp_norm_factor * |h|; the last of
    the v_num_grad_steps iterations only evaluates. Requests are independent: Adam works per
    element, so optimising them together equals optimising each alone."""
    deltas = torch.zeros(len(targets), *h.shape, device=h.device, requires_grad=True)
    shared = torch.zeros_like(h, requires_grad=True)
    optimizer = torch.optim.Adam([deltas, shared], lr=config.v_lr)
    norm, head = head_of(model)
    with torch.no_grad():
        kl_init = F.log_softmax(head(norm(h_kl.to(head.weight.dtype))).float(), -1)
    max_norm = config.clamp_norm_factor * h.norm(dim=-1, keepdim=True)
    for _ in range(config.v_num_grad_steps - 1):
        optimizer.zero_grad()
        for t in torch.randperm(len(targets), generator=generator).tolist():
            loss = value_loss(model, h, h_kl, deltas[t] + shared, targets[t], kl_init, config)
            (loss * (loss.detach() >= 0.05)).sum().backward()
            optimizer.step()
            with torch.no_grad():
                total = (deltas[t] + shared).norm(dim=-1, keepdim=True)
                scale = torch.where(total > max_norm, max_norm / total, torch.ones_like(total))
                deltas[t] *= scale
                shared *= scale
    return deltas.detach()


def value_vectors(model, tokenizer, reqs, config: DAMAConfig) -> torch.Tensor:
    """V (T * n, d): every request's delta for the first target, then the second, ..."""
    targets = word_ids(tokenizer, config.targets)
    bs = config.eval_batch_size
    h = last_block_outputs(model, tokenizer, [r.prompt for r in reqs], bs)
    h_kl = last_block_outputs(model, tokenizer, [f"{r.phrase} is a" for r in reqs], bs)
    generator = torch.Generator().manual_seed(config.seed)
    chunks = []
    with frozen(model):
        for i in range(0, len(reqs), config.value_batch_size):
            part = slice(i, i + config.value_batch_size)
            chunks.append(optimise_values(model, h[part], h_kl[part], targets, config, generator))
    return torch.cat(chunks, dim=1).flatten(0, 1).cpu()


REQUESTS = "dama_requests"  # the prefix cache's states of the requests DAMA uses


# --- step 2: the projections ----------------------------------------------------------


def mlp_out_inputs(model, cache: PrefixCache, split: str, layer: int, batch_size: int):
    """U: the MLP output projection's input of ``layer`` at each cached prompt's last token, on the
    model as it is now (run from the cached states entering block ``cache.block``)."""
    module = mlp_out(model, layer)  # before the block list is cut
    states = cache.states[split]
    with starting_at_block(model, cache.block):
        batches = (collate(states[i : i + batch_size]) for i in range(0, len(states), batch_size))
        return inputs_at(model, module, batches, [-1] * len(states))


@torch.no_grad()
def edit_layers(
    model, cache, values, layers, rank, config, moments=None, split: str = "train"
) -> list[dict]:
    """Project the down-projection of each layer, in ascending order, each on the model as
    the lower layers already left it; the record of each edit. U comes from the cache's
    ``split`` (the prompts of ``values``, in their order)."""
    records = []
    for layer in sorted(layers):
        start = time.perf_counter()
        weight = mlp_out_weight(model, layer)
        u = mlp_out_inputs(model, cache, split, layer, config.eval_batch_size)
        if moments is not None:
            u = whiten(u, moments[layer], config.mom2_update_weight)
        x = torch.cat([u] * (len(values) // len(u))) @ weight.detach().float().cpu().T
        q = pls_directions(x, values, rank)
        edited = project_output(weight.data, q)
        change = (edited.double() - weight.data.double()).norm().item()
        records.append(
            {
                "layer": layer,
                "rank": q.shape[1],
                "delta_norm": change,
                "relative_delta_norm": change / weight.data.double().norm().item(),
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        weight.data.copy_(edited)
    return records


# --- the dev sweep and the choice -----------------------------------------------------


def choose(sweep: list[dict], original: dict, metrics: dict, min_ratio: float) -> dict:
    """The setting with the smallest |relative stereotype slope| on dev among those whose dev
    hint score keeps ``min_ratio`` of the original's (ties: fewer layers, then lower rank).
    The relative slope, unlike the absolute one, does not reward a model that stops
    predicting pronouns. If no setting keeps the hint score, the one that keeps most of it."""
    hint = metrics["hint"]
    floor = min_ratio * original[hint] if original[hint] > 0 else -math.inf
    kept = [s for s in sweep if s["dev"][hint] >= floor]
    if not kept:
        return max(sweep, key=lambda s: (s["dev"][hint], -len(s["layers"]), -s["rank"]))
    return min(kept, key=lambda s: (abs(s["dev"]["a_s_relative"]), len(s["layers"]), s["rank"]))


def _drawn_requests(axis, config: DAMAConfig) -> tuple[list, list[int]]:
    """The train requests DAMA uses (config.requests of them drawn with the seed, else all),
    in the split's order, and their indices in the split."""
    reqs = requests(axis)
    keep = list(range(len(reqs)))
    if config.requests is not None:
        keep = sorted(random.Random(config.seed).sample(keep, min(config.requests, len(keep))))
    return [reqs[i] for i in keep], keep


def run_dama(model, tokenizer, config: DAMAConfig, log=print, moments_fn=None) -> dict:
    """Values, then every (layer set, rank) on the dev splits, then the chosen setting applied
    to ``model`` (in place). ``moments_fn(layers)`` gives {layer: C} for whitening."""
    axis = config.load_axis()  # DAMAConfig refuses an axis without stereotype slopes
    target_token_ids(tokenizer, axis)
    sets = config.layer_sets(num_blocks(model))
    reqs, keep = _drawn_requests(axis, config)
    timings = {}
    start = time.perf_counter()
    values = value_vectors(model, tokenizer, reqs, config)
    timings["values"] = round(time.perf_counter() - start, 1)
    log(f"DAMA: value vectors for {len(reqs)} requests x {config.targets} ({timings['values']} s)")
    first = min(min(s) for s in sets)
    cache = PrefixCache.build(model, tokenizer, first, axis, config.eval_batch_size)
    cache.states[REQUESTS] = [cache.states["train"][i] for i in keep]  # U's prompts
    edited = sorted({b for s in sets for b in s})
    originals = {b: mlp_out_weight(model, b).detach().clone() for b in edited}
    moments = moments_fn(edited) if config.whitening else None
    source, group_ids = FromPrefixCache(cache, model), target_token_ids(tokenizer, axis)
    with torch.no_grad():
        original = evaluate_dev(model, source, axis, group_ids, config.eval_batch_size)
    sweep = []
    for layers in sets:
        for rank in config.ranks:
            _restore(model, originals)
            t0 = time.perf_counter()
            records = edit_layers(model, cache, values, layers, rank, config, moments, REQUESTS)
            with torch.no_grad():
                dev = evaluate_dev(model, source, axis, group_ids, config.eval_batch_size)
            seconds = round(time.perf_counter() - t0, 1)
            sweep.append({"layers": layers, "rank": rank, "dev": dev, "seconds": seconds})
            log(_describe(sweep[-1], axis))
    chosen = choose(sweep, original, axis.metrics, config.min_ub_ratio)
    _restore(model, originals)
    records = edit_layers(
        model, cache, values, chosen["layers"], chosen["rank"], config, moments, REQUESTS
    )
    timings["total"] = round(time.perf_counter() - start, 1)
    log(f"DAMA: chose layers {span(chosen['layers'])}, rank {chosen['rank']} on dev")
    return {
        "original_dev": original,
        "sweep": sweep,
        "chosen": {"layers": chosen["layers"], "rank": chosen["rank"]},
        "edits": records,
        "timings_s": timings,
        "requests": len(reqs),
    }


def _restore(model, originals: dict) -> None:
    with torch.no_grad():
        for layer, weight in originals.items():
            mlp_out_weight(model, layer).copy_(weight)


def _describe(entry: dict, axis) -> str:
    dev, m = entry["dev"], axis.metrics
    return (
        f"layers {span(entry['layers'])}, rank {entry['rank']}: dev a_s {dev['a_s']:.4f}  "
        f"a_s_relative {dev['a_s_relative']:.4f}  {m['bias']} {dev[m['bias']]:.4f}  "
        f"{m['mass']} {dev[m['mass']]:.3f}  {m['hint']} {dev[m['hint']]:.4f}  "
        f"({entry['seconds']} s)"
    )
