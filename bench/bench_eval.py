"""lm-eval on genbiaseval + genhinteval vs a bare batched forward of the same prompts.

    python bench/bench_eval.py [--model smollm2-135m] [--batch-size 64]

Both score the same 944 + 786 test prompts with the same model object already in memory;
the bare forward reads only the next-token logits (logits_to_keep=1). Prints the time
ratio (target <= 1.2) and checks that both give the same AFGB.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lftf_tasks.axis import load_axis
from lftf_tasks.outputs import versions
from lftf_train import data, models
from lftf_train.scoring import bias_scores, score_prompts


def best_of(n, fn):
    times, out = [], None
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from lftf_tasks import task_manager

    model, tok, _ = models.load(args.model)
    bias_rows = data.bias_records("test")
    prompts = [r["prompt"] for r in bias_rows] + [r["prompt"] for r in data.hint_records("test")]
    manager = task_manager(include_defaults=False)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size)

    def harness():
        return lm_eval.simple_evaluate(
            model=lm, tasks=["genbiaseval", "genhinteval"], task_manager=manager
        )

    bare_s, logp = best_of(
        args.repeats, lambda: score_prompts(model, tok, prompts, args.batch_size)
    )
    harness_s, results = best_of(args.repeats, harness)
    bare_afgb = bias_scores(logp[: len(bias_rows)], load_axis("gender"))["afgb"]
    result = {
        "model": args.model,
        "prompts": len(prompts),
        "threads": torch.get_num_threads(),
        "bare_forward_s": round(bare_s, 2),
        "lm_eval_s": round(harness_s, 2),
        "ratio": round(harness_s / bare_s, 3),
        "afgb_bare": bare_afgb,
        "afgb_lm_eval": results["results"]["genbiaseval"]["afgb,none"],
        "versions": versions(),
    }
    print(json.dumps(result, indent=2))
    print(f"lm-eval / bare forward: {result['ratio']:.3f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
