"""Epoch time of cached-prefix training vs naive full-forward training, side by side.

    python bench/bench_trainer.py [--model smollm2-135m] [--block 29] [--epochs 1]

Both paths train the same block with the same loss, batches and seed; the losses are
checked equal. Prints the per-epoch time ratio (target: <= 0.3 when the last block trains).
"""

from __future__ import annotations

import argparse
import json

import torch

from lftf_tasks.outputs import versions
from lftf_train import models
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune


def epoch_seconds(config: LFTFConfig, blocks: list[int], naive: bool) -> tuple[float, list[float]]:
    model, tokenizer, _ = models.load(config.model, config.dtype)
    model = wrap_for_training(model, config, blocks)
    result = finetune(
        model, tokenizer, config, blocks, naive=naive, show_progress=False, log=lambda *_: None
    )
    return min(result.seconds_per_epoch), result.step_losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--block", type=int, default=None, help="default: the last block")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    model, _, _ = models.load(args.model)
    block = model.config.num_hidden_layers - 1 if args.block is None else args.block
    del model
    config = LFTFConfig(model=args.model, blocks=[block], epochs=args.epochs, lr=1e-4)
    cached, cached_losses = epoch_seconds(config, [block], naive=False)
    naive, naive_losses = epoch_seconds(config, [block], naive=True)
    worst = max(abs(a - b) for a, b in zip(cached_losses, naive_losses))
    result = {
        "model": args.model,
        "block": block,
        "threads": torch.get_num_threads(),
        "cached_epoch_s": round(cached, 3),
        "naive_epoch_s": round(naive, 3),
        "ratio": round(cached / naive, 3),
        "max_loss_difference": worst,
        "versions": versions(),
    }
    print(json.dumps(result, indent=2))
    print(f"cached / naive epoch time: {cached / naive:.3f}  (target <= 0.3)")


if __name__ == "__main__":
    main()
