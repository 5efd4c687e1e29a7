"""Does the block a locator picks matter? Fine-tune the top block of each locator with the
same settings, plus control blocks, and score each result on the test splits.

    python bench/locator_check.py [--model smollm2-135m] [--lr 1e-4] [--epochs 7]
        [--controls 15] [--output bench/results/locator_check_smollm2.json]

Locators: BMI from transformers' hidden_states, BMI from each block's own input/output,
and skip (how much removing a block moves |P(he) - P(she)|), all on the same 100
GenBiasEval-train prompts. Controls: the block every locator ranks lowest on average, and
--controls. Scores come from a direct forward pass on GenBiasEval-test and GenHintEval-test
(the same numbers lm-eval's tasks report, to 1e-4: tests/train/test_smollm2_lftf.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from lftf_tasks.outputs import provenance, write_json
from lftf_train import data, models
from lftf_train.locating import locate_blocks
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune
from lftf_train.scoring import axis_scores, hinted_groups, score_prompts
from lftf_train.tables import cell, markdown_table


def test_scores(model, tokenizer, axis, batch_size) -> dict:
    bias = score_prompts(
        model, tokenizer, [r["prompt"] for r in data.bias_records("test", axis)], batch_size, axis
    )
    hints = data.hint_records("test", axis)
    hint = score_prompts(model, tokenizer, [r["prompt"] for r in hints], batch_size, axis)
    return axis_scores(bias, hint, hinted_groups(axis, hints), axis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--axis", default="gender")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--controls", default="15", help="extra blocks to fine-tune")
    parser.add_argument("--output", type=Path, default=Path("bench/results/locator_check.json"))
    args = parser.parse_args()
    config = LFTFConfig(model=args.model, axis=args.axis, lr=args.lr, epochs=args.epochs)
    axis = config.load_axis()
    model, tokenizer, resolved = models.load(config.model)
    start = time.perf_counter()
    located = locate_blocks(model, tokenizer, config, with_skip=True)
    print(f"locate (BMI x2 + skip): {time.perf_counter() - start:.0f} s")
    picks = {f"top of {k}": located["top_block"][k] for k in located["ranking"]}
    n = len(located["scores"]["skip"])
    mean_rank = {
        b: sum(r.index(b) for r in located["ranking"].values()) / len(located["ranking"])
        for b in range(n)
    }
    picks["control: lowest mean rank"] = max(mean_rank, key=mean_rank.get)
    for b in args.controls.split(","):
        if b:
            picks[f"control: block {b}"] = int(b)
    rows = {"original": {"block": None, **test_scores(model, tokenizer, axis, 64)}}
    print("original", rows["original"])
    done = {}
    for name, block in picks.items():
        if block not in done:
            base, _, _ = models.load(config.model)
            trial = dataclasses.replace(config, blocks=[block])
            tuned = wrap_for_training(base, trial, [block])
            t0 = time.perf_counter()
            result = finetune(tuned, tokenizer, trial, [block], show_progress=False, log=print)
            done[block] = {
                **test_scores(tuned, tokenizer, axis, 64),
                "train_seconds": round(time.perf_counter() - t0, 1),
                "final_dev": result.history[-1]["dev"],
            }
        rows[name] = {"block": block, **done[block]}
        print(name, rows[name])
    info = provenance(
        model=config.model,
        resolved_model=resolved,
        axis=axis.name,
        seed=config.seed,
        config=config.to_dict(),
        locate=located,
        rows=rows,
        command="python bench/locator_check.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.output, info)
    print("\n" + table(info, axis))


def table(info: dict, axis) -> str:
    """Test scores per fine-tuned block, from the output's record."""
    keys = [axis.metrics[k] for k in ("bias", "hint", "relative")]
    lines = [
        [name, "–" if r["block"] is None else r["block"], *[cell(r, k) for k in keys]]
        + [r.get("train_seconds", "")]
        for name, r in info["rows"].items()
    ]
    header = ["fine-tuned block", "block", *[f"test {k}" for k in keys], "training s"]
    return markdown_table(header, lines)


if __name__ == "__main__":
    main()
