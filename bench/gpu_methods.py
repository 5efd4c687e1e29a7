"""Time every debiasing method (LFTF, DAMA, ROME, R-ROME, MEMIT, MEND) on a randomly
initialised model of a real shape, each through the Python API on a fresh copy of it.

    python bench/gpu_methods.py --shape qwen2.5-7b --tokenizer DIR --out results.json
    python bench/gpu_methods.py --shape tiny --tokenizer DIR --edits 2 --mend-steps 4 \
        --dama-requests 30 --dama-ranks 8                       # a dry run on the CPU

As ``gpu_bench.py``: speed and memory do not depend on the weight values, so Qwen2.5-7B's
exact config (bf16) stands in for the real model; any tokenizer with single-token
" he"/" she" inside the vocabulary works (SmolLM2's). For each method: the wall time of
``lftf_train.debias`` (what the method reports of its own stages too) and its peak GPU
memory over the base model and the copy it edits. On a random model the editors' value
optimisation never reaches its loss threshold, so every edit runs all its steps: their
per-edit times are upper bounds. The results are written after every method, so a run cut
short keeps what it measured.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_bench import add_shape_arguments, build_model, sync  # noqa: E402

from lftf_tasks.outputs import versions  # noqa: E402
from lftf_train import debias  # noqa: E402
from lftf_train.methods.dama.config import DAMAConfig  # noqa: E402
from lftf_train.methods.edit.config import EditConfig  # noqa: E402
from lftf_train.methods.lftf.config import LFTFConfig  # noqa: E402
from lftf_train.registry import Context  # noqa: E402

METHODS = ("lftf", "dama", "rome", "r-rome", "memit", "mend")


def method_config(name: str, shape: str, depth: int, args):
    """The method's paper defaults, with the bench's edit count and MEND schedule."""
    if name == "lftf":
        return LFTFConfig(model=shape, blocks=[depth - 1], epochs=2, lr=1e-5)
    if name == "dama":
        ranks = {"ranks": args.dama_ranks} if args.dama_ranks else {}
        return DAMAConfig(model=shape, requests=args.dama_requests, **ranks)
    if name == "mend":
        steps = args.mend_steps
        return EditConfig(
            model=shape,
            editor="mend",
            edits=args.edits,
            mend_steps=steps,
            mend_val_every=max(1, steps // 2),
            mend_retrain=True,
        )
    return EditConfig(model=shape, editor=name, edits=args.edits)


def run_method(base, tokenizer, name: str, args) -> dict:
    """``name`` applied to a copy of ``base``: seconds, peak memory over the weights held
    before the copy, and the timings the method records itself."""
    gc.collect()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated() if cuda else 0
    model = copy.deepcopy(base)
    config = method_config(name, args.shape, base.config.num_hidden_layers, args)
    context = Context(resolved_model=args.shape, log=lambda *_: None, show_progress=False)
    sync()
    start = time.perf_counter()
    result = debias(model, tokenizer, config, context=context, log=lambda *_: None)
    sync()
    seconds = time.perf_counter() - start
    details = result.record["result"]
    out = {
        "seconds": round(seconds, 2),
        "peak_memory_over_base_gb": (
            round((torch.cuda.max_memory_allocated() - held) / 2**30, 2) if cuda else None
        ),
        "settings": result.adapted.settings,
        "timings_s": details.get("timings_s"),
    }
    if "seconds_per_epoch" in details:
        out["seconds_per_epoch"] = details["seconds_per_epoch"]
    if "edits" in details.get("summary", {}):
        edits = details["summary"]["edits"]
        out["seconds_per_edit"] = round(details["timings_s"]["edits"] / edits, 3)
    if "training" in details:  # MEND's editor network
        out["mend_training_seconds"] = details["training"]["seconds"]
        out["mend_training_steps"] = details["training"]["curve"][-1]["step"]
    del result, model
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shape_arguments(parser)
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
    )
    parser.add_argument("--edits", type=int, default=10, help="requests each editor edits")
    parser.add_argument("--mend-steps", type=int, default=100, help="MEND training edits")
    parser.add_argument(
        "--dama-requests", type=int, default=None, help="DAMA's train requests (default all)"
    )
    parser.add_argument("--dama-ranks", help="DAMA's ranks to sweep (default DAMAConfig's)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}: choose from {', '.join(METHODS)}")
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    results = {
        "shape": args.shape,
        "dtype": str(dtype),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "edits": args.edits,
        "mend_steps": args.mend_steps,
        "versions": versions(),
        "methods": {},
    }

    def save():
        text = json.dumps(results, indent=2)
        if args.out:
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(args.out)
        return text

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    start = time.perf_counter()
    base = build_model(args.shape, dtype, device)
    results["init_seconds"] = round(time.perf_counter() - start, 2)
    results["weights_gb"] = round(
        sum(p.numel() * p.element_size() for p in base.parameters()) / 2**30, 3
    )
    for name in methods:
        try:
            results["methods"][name] = run_method(base, tokenizer, name, args)
        except Exception as err:  # keep measuring the other methods
            results["methods"][name] = f"failed: {type(err).__name__}: {err}"
        print(name, json.dumps(results["methods"][name]), flush=True)
        save()
    if device == "cuda":
        results["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(save())


if __name__ == "__main__":
    main()
