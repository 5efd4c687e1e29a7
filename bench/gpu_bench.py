"""Time locate + LFTF + evaluation on a randomly initialised model of a real shape.

    python bench/gpu_bench.py --shape qwen2.5-7b --tokenizer DIR --out results.json
    python bench/gpu_bench.py --shape tiny --tokenizer DIR          # a dry run on the CPU

Speed and memory do not depend on weight values, so a random model with Qwen2.5-7B's exact
config (bf16) stands in for the real one where no model hub is reachable. Any tokenizer
with single-token " he"/" she" and ids below the model's vocabulary works (we use
SmolLM2's). Measures, each after the model is loaded:
- locate: BMI of every block from both sources on 100 GenBiasEval-train prompts;
- LFTF, 2 epochs on the last block, method full and lora (cached prefix), and one naive
  epoch for the speed ratio; peak memory of each against the weights;
- evaluation of genbiaseval + genhinteval through lm-eval (if installed) against a bare
  batched forward that reads only the next-token logits.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lftf_tasks.outputs import versions  # noqa: E402
from lftf_train import data  # noqa: E402
from lftf_train.locating import locate_blocks  # noqa: E402
from lftf_train.methods.lftf.config import LFTFConfig  # noqa: E402
from lftf_train.methods.lftf.model import wrap_for_training  # noqa: E402
from lftf_train.methods.lftf.train import finetune  # noqa: E402
from lftf_train.scoring import score_prompts  # noqa: E402

# Qwen/Qwen2.5-7B's config.json (the fields that shape compute and memory).
SHAPES = {
    "qwen2.5-7b": dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=131072,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        use_sliding_window=False,
        hidden_act="silu",
    ),
    "tiny": dict(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    ),
}


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def allocated() -> int:
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else 0


def timed(fn):
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def build_model(shape: str, dtype: torch.dtype, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], dtype=dtype)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    torch.set_default_dtype(default)
    return model.eval()


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    """--shape, --tokenizer, --out: what every GPU bench script takes."""
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-7b")
    parser.add_argument("--tokenizer", required=True, help="folder with a tokenizer")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")


def train_once(base, tok, config, blocks, naive=False):
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = wrap_for_training(copy.deepcopy(base), config, blocks)
    before = allocated()

    def run():
        return finetune(
            model, tok, config, blocks, naive=naive, show_progress=False, log=lambda *_: None
        )

    result, seconds = timed(run)
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    out = {
        "seconds_total": round(seconds, 2),
        "seconds_per_epoch": [round(s, 2) for s in result.seconds_per_epoch],
        "extra_memory_gb": round((peak - before) / 2**30, 3),
        "dev_afgb": [round(h["dev"]["afgb"], 4) for h in result.history],
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shape_arguments(parser)
    parser.add_argument("--skip-lm-eval", action="store_true")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    results = {
        "shape": args.shape,
        "config": SHAPES[args.shape],
        "dtype": str(dtype),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "versions": versions(),
    }

    def save():
        text = json.dumps(results, indent=2)
        print(text, flush=True)
        if args.out:
            args.out.write_text(text + "\n")

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    base, results["init_seconds"] = timed(lambda: build_model(args.shape, dtype, device))
    weights = sum(p.numel() * p.element_size() for p in base.parameters())
    results["weights_gb"] = round(weights / 2**30, 3)
    last = base.config.num_hidden_layers - 1
    config = LFTFConfig(model=args.shape, blocks=[last], epochs=2, lr=1e-5)

    located, results["locate_seconds"] = timed(
        lambda: locate_blocks(base, tok, config, show_progress=False)
    )
    results["locate_top_block"] = located["top_block"]
    save()
    for method in ("full", "lora"):
        try:
            c = dataclasses.replace(config, method=method)
            r = train_once(base, tok, c, [last])
            r["memory_ratio"] = round((weights + r["extra_memory_gb"] * 2**30) / weights, 3)
            results[f"finetune_{method}"] = r
        except Exception as err:  # keep measuring the other stages
            results[f"finetune_{method}"] = f"failed: {type(err).__name__}: {err}"
        save()
    try:
        naive = train_once(base, tok, dataclasses.replace(config, epochs=1), [last], naive=True)
        results["finetune_full_naive_1_epoch"] = naive
        cached_epoch = min(results["finetune_full"]["seconds_per_epoch"])
        results["cached_over_naive_epoch"] = round(cached_epoch / naive["seconds_per_epoch"][0], 3)
        results["locate_plus_finetune_full_seconds"] = round(
            results["locate_seconds"] + results["finetune_full"]["seconds_total"], 2
        )
    except Exception as err:
        results["finetune_full_naive_1_epoch"] = f"failed: {type(err).__name__}: {err}"
    save()

    prompts = [r["prompt"] for r in data.bias_records("test")]
    prompts += [r["prompt"] for r in data.hint_records("test")]
    _, results["bare_forward_seconds"] = timed(lambda: score_prompts(base, tok, prompts, 64))
    _, results["bare_forward_seconds"] = timed(lambda: score_prompts(base, tok, prompts, 64))
    if not args.skip_lm_eval:
        try:
            import lm_eval
            from lm_eval.models.huggingface import HFLM

            from lftf_tasks import task_manager

            lm = HFLM(pretrained=base, tokenizer=tok, batch_size=64)
            manager = task_manager(include_defaults=False)
            _, seconds = timed(
                lambda: lm_eval.simple_evaluate(
                    model=lm, tasks=["genbiaseval", "genhinteval"], task_manager=manager
                )
            )
            results["lm_eval_seconds"] = round(seconds, 2)
            results["lm_eval_over_bare_forward"] = round(
                seconds / results["bare_forward_seconds"], 3
            )
        except Exception as err:
            results["lm_eval_seconds"] = f"not measured: {type(err).__name__}: {err}"
    results["peak_memory_gb"] = (
        round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None
    )
    save()


if __name__ == "__main__":
    main()
