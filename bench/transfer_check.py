"""Which LFTF objective carries over to benchmarks written by others? Train each variant on
GenBiasEval-train, score it with lm-eval on the *dev* tasks only (genbiaseval_dev,
genhinteval_dev, winobias_dev), and choose the winner by a rule fixed before looking.

    python bench/transfer_check.py [--model smollm2-135m] [--block 29]
        [--output bench/results/transfer_check_smollm2.json]

Variants: the paper's loss (-log P(he) - log P(she)) and ours (loss='split': the split
alone, with the KL term that keeps the rest of the next-token distribution), each with and
without the anchor term (KL on hinted prompts of training-only templates, which keeps hint
following). Rule: among variants whose GenHintEval-dev UB keeps at least 0.8
of the original's (the trainer's own guard), the lowest mean of GenBiasEval-dev AFGB and
WinoBias-dev pro gap, each divided by the original's. WinoBias test and Winogender are never
looked at here: the report scores the winner on them beside every other row.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

from lftf_tasks.outputs import provenance, write_json
from lftf_tasks.transfer import transfer_summary
from lftf_train import LFTFConfig, debias, models
from lftf_train.evaluate import lm_eval_model_args, run_lm_eval
from lftf_train.prefix import PrefixCache
from lftf_train.registry import Context
from lftf_train.tables import markdown_table

DEV_TASKS = ["genbiaseval_dev", "genhinteval_dev", "winobias_dev"]
VARIANTS = {  # name: LFTFConfig fields besides the block
    "paper loss (dev-tuned: lr 1e-4, 7 ep)": {"lr": 1e-4, "epochs": 7},
    "paper loss + anchors 1": {"lr": 1e-4, "epochs": 7, "anchor_weight": 1.0},
    "split + KL 1": {"lr": 1e-4, "epochs": 7, "loss": "split", "kl_weight": 1.0},
    "split + KL 1 + anchors 1": {
        "lr": 1e-4,
        "epochs": 7,
        "loss": "split",
        "kl_weight": 1.0,
        "anchor_weight": 1.0,
    },
    "split + KL 1 + anchors 1, lr 3e-4": {
        "lr": 3e-4,
        "epochs": 7,
        "loss": "split",
        "kl_weight": 1.0,
        "anchor_weight": 1.0,
    },
}
KEYS = ["afgb", "ub", "pronoun_mass", "winobias_dev_pct_pro", "winobias_dev_pro_gap"]


def dev_scores(model_args: str) -> dict:
    results = run_lm_eval(model_args, DEV_TASKS)
    r = results["results"]
    return {
        "afgb": r["genbiaseval_dev"]["afgb,none"],
        "pronoun_mass": r["genbiaseval_dev"]["pronoun_mass,none"],
        "ub": r["genhinteval_dev"]["ub,none"],
        **{k: v for k, v in transfer_summary(results).items() if k.startswith("winobias_dev")},
    }


def choose(runs: dict, original: dict) -> str:
    allowed = {n: r for n, r in runs.items() if r["ub"] >= 0.8 * original["ub"]}

    def score(r):
        return (
            r["afgb"] / original["afgb"]
            + r["winobias_dev_pro_gap"] / original["winobias_dev_pro_gap"]
        )

    return min(allowed, key=lambda n: score(allowed[n]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--block", type=int, default=29)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=Path("bench/results/transfer_check.json"))
    args = parser.parse_args()
    base, tokenizer, resolved = models.load(args.model, "float32")
    axis = LFTFConfig().load_axis()
    context = Context(
        resolved_model=resolved,
        log=lambda *_: None,
        show_progress=False,
        prefix_cache=PrefixCache.build(base, tokenizer, args.block, axis, 64),
    )
    base_config = {"model": args.model, "blocks": args.block, "seed": args.seed, "select": "last"}
    original = dev_scores(lm_eval_model_args(resolved, LFTFConfig(**base_config)))
    print("original", {k: round(original[k], 4) for k in KEYS}, flush=True)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fields in VARIANTS.items():
            start = time.perf_counter()
            config = LFTFConfig(**base_config, **fields)
            result = debias(copy.deepcopy(base), tokenizer, config, context=context)
            folder = Path(tmp) / "adapter"
            result.save_pretrained(folder, overwrite=True)
            runs[name] = {"config": fields, **dev_scores(result.lm_eval_model_args(folder))}
            runs[name]["seconds"] = round(time.perf_counter() - start, 1)
            print(name, {k: round(runs[name][k], 4) for k in KEYS}, flush=True)
    chosen = choose(runs, original)
    info = provenance(model=args.model, resolved_model=resolved, seed=args.seed, block=args.block)
    info = {**info, "original": original, "runs": runs, "chosen": chosen}
    info["table"] = table(info)
    print(info["table"] + f"\n\nchosen on dev: {chosen} {VARIANTS[chosen]}")
    write_json(args.output, info)


def table(info: dict) -> str:
    """The dev scores of every variant (the chosen one in bold), from the output's record."""
    original, runs, chosen = info["original"], info["runs"], info["chosen"]
    return markdown_table(
        [f"variant (block {info['block']})", *[f"dev {k}" for k in KEYS]],
        [["original", *[f"{original[k]:.4f}" for k in KEYS]]]
        + [
            [f"**{n}**" if n == chosen else n, *[f"{r[k]:.4f}" for k in KEYS]]
            for n, r in runs.items()
        ],
    )


if __name__ == "__main__":
    main()
