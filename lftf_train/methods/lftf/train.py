"""The LFTF fine-tuning loop: L = mean over prompts of -log P(he|p) - log P(she|p).

The paper's Eq. 5 is written with "P(he) + P(she)", but only the sum of negative
log-likelihoods reproduces its results: it is minimal at P(he) = P(she) = 0.5, so it pushes
both pronouns up together until neither dominates. For an axis of k groups the loss is
-sum_g log P(g|p), minimal when every group has probability 1/k. ``loss='split'`` and
``kl_weight`` are our alternatives (see loss.py).

Only the chosen blocks train; by default every step starts from the cached hidden state
that enters the first of them (``logits.FromPrefixCache``, see prefix.py). ``naive=True``
runs a full forward per step instead (``logits.FullForward``): the same losses, for
checking and benchmarking. After every epoch the model is scored on the axis's dev splits; with
select='best_dev' a ``BestEpochTracker`` keeps the best epoch and stops early.
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

from lftf_tasks.axis import Axis
from lftf_train import data
from lftf_train.logits import FromPrefixCache, FullForward, evaluate_dev
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.loss import OBJECTIVES, kept_kl, kl, merged_logprobs, nll_loss
from lftf_train.prefix import PrefixCache, block_inputs, verify_prefix_cache
from lftf_train.scoring import contiguous_head_input, group_logprobs, target_token_ids

lftf_loss = nll_loss  # the paper's objective, under the name the API exports


@dataclass
class TrainResult:
    # epoch 0 = before training; "dev" holds the axis's metrics (axis.metrics names) on its
    # bias dev split and, for the hint metric, on its hint dev split
    history: list[dict] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds_per_epoch: list[float] = field(default_factory=list)
    optimized_parameters: int = 0  # elements the optimizer holds state for
    prefix_cache: PrefixCache | None = None  # the cache it trained from (None: naive)


def best_epoch(history: list[dict], min_hint_ratio: float, metrics: dict[str, str]) -> int:
    """The epoch with the lowest dev bias whose dev hint score is at least min_hint_ratio
    times the untrained model's (epoch 0, which always qualifies; ties go to the earlier
    epoch). A model that did not follow hints to begin with (score <= 0) has nothing to keep.
    """
    bias, hint = metrics["bias"], metrics["hint"]
    original = history[0]["dev"][hint]
    floor = min_hint_ratio * original if original > 0 else -math.inf
    allowed = [h for h in history if h["epoch"] == 0 or h["dev"][hint] >= floor]
    return min(allowed, key=lambda h: (h["dev"][bias], h["epoch"]))["epoch"]


class BestEpochTracker:
    """select='best_dev': keeps the trained weights of the best epoch so far (``best_epoch``)
    and, like transformers' EarlyStoppingCallback, says to stop after ``patience`` epochs
    without a new best."""

    def __init__(self, model, config: LFTFConfig, metrics: dict[str, str]):
        self.model, self.metrics = model, metrics
        self.min_hint_ratio, self.patience = config.min_ub_ratio, config.patience
        self.best, self.stale = 0, 0
        self.state = self._snapshot()

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def update(self, history: list[dict]) -> bool:
        """Record the epoch just evaluated (history[-1]); True when training should stop."""
        self.best = best_epoch(history, self.min_hint_ratio, self.metrics)
        if self.best == history[-1]["epoch"]:
            self.state, self.stale = self._snapshot(), 0
        else:
            self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    @torch.no_grad()
    def restore(self) -> None:
        for name, param in self.model.named_parameters():
            if name in self.state:
                param.copy_(self.state[name])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, world: int) -> list[list[int]]:
    """The epoch's shuffled batches of prompt indices (seeded per epoch); a batch too small
    to give every process a share is dropped."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1009 + epoch))
    batches = [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    return [b for b in batches if len(b) >= world]


def _float32_training(model, trainable: list, device_type: str):
    """With 16-bit weights, train float32 copies of the trained parameters under autocast."""
    weights_dtype = next(model.parameters()).dtype
    if weights_dtype == torch.float32:
        return contextlib.nullcontext()
    for p in trainable:
        p.data = p.data.float()
    return torch.autocast(device_type, dtype=weights_dtype)


def _logits_source(model, tokenizer, config, axis, first_block, naive, prefix_cache, device):
    """What every step asks for logits, chosen once: a full forward, or the prefix cache
    (built unless a matching one is given, and checked against a full forward)."""
    if naive:
        return FullForward(tokenizer, data.training_prompts(axis), device)
    if prefix_cache is None or not prefix_cache.serves(first_block, axis):
        prefix_cache = PrefixCache.build(
            model, tokenizer, first_block, axis, batch_size=config.eval_batch_size
        )
    train = data.training_prompts(axis)["train"][:8]
    verify_prefix_cache(model, tokenizer, train, first_block, target_token_ids(tokenizer, axis))
    return FromPrefixCache(prefix_cache, model)


@dataclass
class _Loop:
    """What every step of every epoch uses, fixed before the first one."""

    config: LFTFConfig
    source: FullForward | FromPrefixCache
    group_ids: list[list[int]]
    loss_columns: list[int]
    trainable: list[torch.nn.Parameter]
    autocast: contextlib.AbstractContextManager
    accelerator: Accelerator
    reference: torch.Tensor | None = None  # the original's merged log-probs (kl_weight > 0)
    anchors: torch.Tensor | None = None  # its log-probs on hinted prompts (anchor_weight > 0)

    def loss(self, net, batch: list[int]) -> torch.Tensor:
        """The configured objective on one process's share of a batch."""
        logits = self.source.logits(net, "train", batch)
        logp = group_logprobs(logits, self.group_ids)
        loss = OBJECTIVES[self.config.loss](logp, self.loss_columns)
        if self.reference is not None:
            reference = self.reference[batch].to(logits.device)
            loss = loss + self.config.kl_weight * kept_kl(reference, logits, self.group_ids)
        if self.anchors is not None:  # as many hinted prompts as the batch has, seeded by it
            picked = [i % len(self.anchors) for i in batch]
            hinted = self.source.logits(net, "anchor", picked).float().log_softmax(-1)
            reference = self.anchors[picked].to(hinted.device)
            loss = loss + self.config.anchor_weight * kl(reference, hinted)
        return loss


@torch.no_grad()
def reference_logprobs(model, source, transform, split: str, batch_size: int) -> torch.Tensor:
    """``transform`` of the untrained model's next-token logits on every prompt of a split,
    for the KL terms; kept on the CPU."""
    n = source.size(split)
    chunks = [
        transform(source.logits(model, split, list(range(i, min(i + batch_size, n)))))
        for i in range(0, n, batch_size)
    ]
    return torch.cat(chunks).cpu()


def _add_anchor_prompts(source, model, tokenizer, axis: Axis, batch_size: int) -> None:
    """Give the logits source the hinted anchor prompts (in the prefix cache, once)."""
    prompts = data.anchor_prompts(axis)
    if isinstance(source, FullForward):
        source.prompts = {**source.prompts, "anchor": prompts}
    elif "anchor" not in source.cache.states:
        block = source.cache.block
        source.cache.states["anchor"] = block_inputs(model, tokenizer, prompts, block, batch_size)


def _references(loop, model, tokenizer, axis: Axis) -> None:
    """The untrained model's distributions the KL terms compare with, fixed before step 1."""
    config, source, bs = loop.config, loop.source, loop.config.eval_batch_size
    with loop.autocast:
        if config.kl_weight > 0:
            merged = lambda logits: merged_logprobs(logits, loop.group_ids)  # noqa: E731
            loop.reference = reference_logprobs(model, source, merged, "train", bs)
        if config.anchor_weight > 0:
            _add_anchor_prompts(source, model, tokenizer, axis, bs)
            full = lambda logits: logits.float().log_softmax(-1)  # noqa: E731
            loop.anchors = reference_logprobs(model, source, full, "anchor", bs)


def _train_epoch(net, optimizer, loop: _Loop, epoch: int, show_progress: bool) -> list[float]:
    """One pass over the train split; the per-step losses (averaged over processes)."""
    config, accelerator = loop.config, loop.accelerator
    rank, world = accelerator.process_index, accelerator.num_processes
    batches = epoch_batches(loop.source.size("train"), config.batch_size, config.seed, epoch, world)
    show = show_progress and accelerator.is_main_process
    bar = tqdm(
        batches,
        desc=f"epoch {epoch}/{config.epochs}",
        unit="step",
        disable=None if show else True,  # None: only on a terminal
        leave=False,
    )
    losses = []
    for step, batch in enumerate(bar):
        with loop.autocast:
            loss = loop.loss(net, batch[rank::world])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at epoch {epoch}, step {step}: lower the "
                f"learning rate (now {config.lr:g}) or train in float32 (--dtype float32)"
            )
        accelerator.backward(loss)
        if config.max_grad_norm is not None:
            accelerator.clip_grad_norm_(loop.trainable, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(accelerator.reduce(loss.detach(), reduction="mean").item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses


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
    prefix_cache: PrefixCache | None = None,
) -> TrainResult:
    """Train ``model`` (a PeftModel from adapters.wrap_for_training) in place.

    ``prefix_cache`` (a PrefixCache of this axis at min(blocks)) saves building it again
    when several fine-tunings start at the same block.
    """
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    set_seed(config.seed)
    axis = config.load_axis()
    model.eval()  # no dropout: the loss is a deterministic function of the weights
    if getattr(model, "hf_device_map", None) is None:  # device_map='auto' places it itself
        model.to(accelerator.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    autocast = _float32_training(model, trainable, accelerator.device.type)
    with contiguous_head_input(model):
        with autocast:
            source = _logits_source(
                model, tokenizer, config, axis, min(blocks), naive, prefix_cache, accelerator.device
            )
        group_ids = target_token_ids(tokenizer, axis)
        loop = _Loop(
            config=config,
            source=source,
            group_ids=group_ids,
            loss_columns=[axis.labels.index(t) for t in config.terms],
            trainable=trainable,
            autocast=autocast,
            accelerator=accelerator,
        )
        _references(loop, model, tokenizer, axis)
        optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
        net, optimizer = accelerator.prepare(model, optimizer)
        result = _epochs(model, net, optimizer, loop, axis, show_progress=show_progress, log=log)
    result.prefix_cache = getattr(source, "cache", None)
    return result


def _epochs(model, net, optimizer, loop: _Loop, axis: Axis, *, show_progress, log) -> TrainResult:
    """Evaluate on dev before training and after every epoch; keep the selected epoch."""
    config = loop.config

    def dev_entry(epoch: int, train_loss: float | None) -> dict:
        with loop.autocast:
            dev = evaluate_dev(model, loop.source, axis, loop.group_ids, config.eval_batch_size)
        entry = {"epoch": epoch, "train_loss": train_loss, "dev": dev}
        log(_describe(entry, axis))
        return entry

    result = TrainResult(optimized_parameters=sum(p.numel() for p in loop.trainable))
    result.history.append(dev_entry(0, None))
    tracker = BestEpochTracker(model, config, axis.metrics) if config.select == "best_dev" else None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        losses = _train_epoch(net, optimizer, loop, epoch, show_progress)
        result.seconds_per_epoch.append(time.perf_counter() - start)
        result.step_losses += losses
        result.history.append(dev_entry(epoch, sum(losses) / len(losses)))
        result.best_epoch = epoch
        if tracker is not None:
            stop = tracker.update(result.history)
            result.best_epoch = tracker.best
            if stop:
                log(
                    f"early stop: no better dev {axis.metrics['bias']} for {tracker.stale} epoch(s)"
                )
                break
    if tracker is not None:
        tracker.restore()
        log(
            f"kept epoch {tracker.best}: lowest dev {axis.metrics['bias']} "
            f"({result.history[tracker.best]['dev'][axis.metrics['bias']]:.4f}) among epochs "
            f"whose dev {axis.metrics['hint']} keeps {config.min_ub_ratio:g} x the original"
        )
    return result


def _describe(entry: dict, axis: Axis) -> str:
    loss = "" if entry["train_loss"] is None else f"loss {entry['train_loss']:.4f}  "
    dev, m = entry["dev"], axis.metrics
    return (
        f"epoch {entry['epoch']}: {loss}dev {m['bias']} {dev[m['bias']]:.4f}  "
        f"{m['mass']} {dev[m['mass']]:.3f}  {m['relative']} {dev[m['relative']]:.3f}  "
        f"dev {m['hint']} {dev[m['hint']]:.4f}"
    )
