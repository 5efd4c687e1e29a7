"""The LFTF fine-tuning loop: L = mean over prompts of -log P(he|p) - log P(she|p).

The paper's Eq. 5 is written with "P(he) + P(she)", but only the sum of negative
log-likelihoods reproduces its results: it is minimal at P(he) = P(she) = 0.5, so it pushes
both pronouns up together until neither dominates. For an axis of k groups the loss is
-sum_g log P(g|p), minimal when every group has probability 1/k.

Only the chosen blocks train; by default the loop starts from the cached hidden state that
enters the first of them (see prefix.py). ``naive=True`` runs a full forward per step
instead: the same losses, for checking and benchmarking.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from lftf_tasks.axis import load_axis
from lftf_train import data
from lftf_train.config import LFTFConfig
from lftf_train.prefix import (
    block_inputs,
    last_logits_from_block,
    score_cached,
    verify_prefix_cache,
)
from lftf_train.scoring import (
    bias_scores,
    contiguous_head_input,
    encode,
    group_logprobs,
    hinted_groups,
    score_prompts,
    target_token_ids,
    ub_score,
)


def lftf_loss(logp: torch.Tensor, columns: list[int]) -> torch.Tensor:
    """(batch, groups) log P(group) -> mean over the batch of -sum of the chosen groups'."""
    return -logp[:, columns].sum(-1).mean()


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # epoch 0 = before training
    step_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    first_block: int = 0
    seconds_per_epoch: list[float] = field(default_factory=list)
    optimized_parameters: int = 0  # elements the optimizer holds state for


def best_epoch(history: list[dict], min_ub_ratio: float) -> int:
    """The epoch with the lowest dev AFGB whose dev UB is at least min_ub_ratio times the
    untrained model's (epoch 0, which always qualifies; ties go to the earlier epoch). A
    model that did not follow hints to begin with (UB <= 0) has nothing to keep."""
    original = history[0]["dev_ub"]
    floor = min_ub_ratio * original if original > 0 else -math.inf
    allowed = [h for h in history if h["epoch"] == 0 or h["dev_ub"] >= floor]
    return min(allowed, key=lambda h: (h["dev"]["afgb"], h["epoch"]))["epoch"]


def training_prompts(axis=None) -> dict[str, list[str]]:
    """Train on GenBiasEval-train; select and log on GenBiasEval-dev and GenHintEval-dev
    (the axis's bias train/dev and hint dev splits).

    The test splits stay unseen until the final evaluation.
    """
    return {
        "train": [r["prompt"] for r in data.bias_records("train", axis)],
        "dev": [r["prompt"] for r in data.bias_records("dev", axis)],
        "hint": [r["prompt"] for r in data.hint_records("dev", axis)],
    }


@torch.no_grad()
def build_prefix_cache(model, tokenizer, block: int, batch_size: int = 64, axis=None) -> dict:
    """Hidden states entering ``block`` for every training/dev prompt, reusable by every
    fine-tuning whose first trained block is ``block`` (blocks below it stay frozen)."""
    axis = axis or load_axis("gender")
    states = {
        name: block_inputs(model, tokenizer, prompts, block, batch_size)
        for name, prompts in training_prompts(axis).items()
    }
    return {"block": block, "axis": axis.name, "states": states}


class _Prompts:
    """Prompts of one set and, when caching, the hidden states entering the first block."""

    def __init__(self, prompts, states=None):
        self.prompts, self.states = prompts, states

    def __len__(self):
        return len(self.prompts)


def _trainable_snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def finetune(
    model,
    tokenizer,
    config: LFTFConfig,
    blocks: list[int],
    *,
    naive: bool = False,
    accelerator: Accelerator | None = None,
    show_progress: bool = True,
    log=print,
    prefix_cache: dict | None = None,
) -> TrainResult:
    """Train ``model`` (a PeftModel from adapters.wrap_for_training) in place.

    ``prefix_cache`` (from build_prefix_cache) saves recomputing the cached states when
    several fine-tunings start at the same block.
    """
    with contiguous_head_input(model):
        return _finetune(
            model, tokenizer, config, blocks, naive, accelerator, show_progress, log, prefix_cache
        )


def _finetune(
    model, tokenizer, config, blocks, naive, accelerator, show_progress, log, prefix_cache
):
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    set_seed(config.seed)
    axis = config.load_axis()
    group_ids = target_token_ids(tokenizer, axis)
    loss_columns = [axis.labels.index(t) for t in config.terms]
    first = min(blocks)
    model.eval()  # no dropout: the loss is a deterministic function of the weights
    if getattr(model, "hf_device_map", None) is None:  # device_map='auto' places it itself
        model.to(accelerator.device)
    weights_dtype = next(model.parameters()).dtype
    trainable = [p for p in model.parameters() if p.requires_grad]
    autocast = contextlib.nullcontext()
    if weights_dtype != torch.float32:  # 16-bit weights: train float32 copies under autocast
        for p in trainable:
            p.data = p.data.float()
        autocast = torch.autocast(accelerator.device.type, dtype=weights_dtype)

    prompts = training_prompts(axis)
    hints = hinted_groups(axis, data.hint_records("dev", axis))
    with autocast:
        if naive:
            sets = {k: _Prompts(v) for k, v in prompts.items()}
        else:
            if prefix_cache is None or (prefix_cache["block"], prefix_cache["axis"]) != (
                first,
                axis.name,
            ):
                prefix_cache = build_prefix_cache(
                    model, tokenizer, first, config.eval_batch_size, axis
                )
            sets = {k: _Prompts(v, prefix_cache["states"][k]) for k, v in prompts.items()}
            verify_prefix_cache(model, tokenizer, prompts["train"][:8], first, group_ids)

    optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    rank, world = accelerator.process_index, accelerator.num_processes

    def next_token_logits(net, prompts: _Prompts, indices):
        if naive:
            batch = encode(tokenizer, [prompts.prompts[i] for i in indices], accelerator.device)
            return net(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        return last_logits_from_block(net, model, [prompts.states[i] for i in indices], first)

    @torch.no_grad()
    def evaluate() -> dict:
        with autocast:
            if naive:
                dev = score_prompts(
                    model, tokenizer, sets["dev"].prompts, config.eval_batch_size, axis
                )
                hint = score_prompts(
                    model, tokenizer, sets["hint"].prompts, config.eval_batch_size, axis
                )
            else:
                dev = score_cached(
                    model, sets["dev"].states, first, group_ids, config.eval_batch_size
                )
                hint = score_cached(
                    model, sets["hint"].states, first, group_ids, config.eval_batch_size
                )
        return {"dev": bias_scores(dev, axis), "dev_ub": ub_score(hint, hints)}

    result = TrainResult(first_block=first)
    result.optimized_parameters = sum(
        p.numel() for g in optimizer.param_groups for p in g["params"]
    )
    result.history.append({"epoch": 0, "train_loss": None, **evaluate()})
    log(_describe(result.history[-1], axis))
    best_state = _trainable_snapshot(model) if config.select == "best_dev" else None
    stale = 0
    n = len(sets["train"])
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(config.seed * 1009 + epoch)
        )
        batches = [
            order[i : i + config.batch_size].tolist() for i in range(0, n, config.batch_size)
        ]
        batches = [b for b in batches if len(b) >= world]  # every process needs a share
        losses = []
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}/{config.epochs}",
            unit="step",
            disable=None
            if show_progress and accelerator.is_main_process
            else True,  # None: tty only
            leave=False,
        )
        for step, global_batch in enumerate(bar):
            with autocast:
                logits = next_token_logits(wrapped, sets["train"], global_batch[rank::world])
                loss = lftf_loss(group_logprobs(logits, group_ids), loss_columns)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at epoch {epoch}, step {step}: lower the "
                    f"learning rate (now {config.lr:g}) or train in float32 (--dtype float32)"
                )
            accelerator.backward(loss)
            if config.max_grad_norm is not None:
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
            losses.append(loss_value)
            bar.set_postfix(loss=f"{loss_value:.4f}")
        result.seconds_per_epoch.append(time.perf_counter() - start)
        result.step_losses += losses
        entry = {"epoch": epoch, "train_loss": sum(losses) / len(losses), **evaluate()}
        result.history.append(entry)
        log(_describe(entry, axis))
        if config.select == "best_dev":
            result.best_epoch = best_epoch(result.history, config.min_ub_ratio)
            if result.best_epoch == epoch:
                best_state, stale = _trainable_snapshot(model), 0
            else:
                stale += 1
                if config.patience is not None and stale >= config.patience:
                    log(f"early stop: no better dev {axis.metrics['bias']} for {stale} epoch(s)")
                    break
        else:
            result.best_epoch = epoch
    if config.select == "best_dev":
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in best_state:
                    param.copy_(best_state[name])
        kept = result.history[result.best_epoch]
        log(
            f"kept epoch {result.best_epoch}: lowest dev {axis.metrics['bias']} "
            f"({kept['dev']['afgb']:.4f}) among epochs whose dev {axis.metrics['hint']} keeps "
            f"{config.min_ub_ratio:g} x the original"
        )
    return result


def _describe(entry: dict, axis) -> str:
    loss = "" if entry["train_loss"] is None else f"loss {entry['train_loss']:.4f}  "
    dev, m = entry["dev"], axis.metrics
    return (
        f"epoch {entry['epoch']}: {loss}dev {m['bias']} {dev['afgb']:.4f}  "
        f"{m['mass']} {dev['pronoun_mass']:.3f}  {m['relative']} {dev['relative_gap']:.3f}  "
        f"dev {m['hint']} {entry['dev_ub']:.4f}"
    )
