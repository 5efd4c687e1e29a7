"""Peak memory of LFTF training against the model's weights (CPU).

    python bench/bench_memory.py [--model smollm2-135m] [--method full|lora] [--measure tensors|rss]

One epoch trains the last block (cache building and dev evaluation included) and the
script reports (weights + training's extra memory) / weights (target <= 1.3), measured
one of two ways:

- ``tensors`` (default): the peak of live tensor memory, from torch.profiler's memory
  timeline (tensors that existed before training, i.e. the weights, are subtracted). This
  is what bench/gpu_bench.py reads on a GPU from torch.cuda.max_memory_allocated, so the
  two ratios compare like for like. Profiling makes the epoch a few times slower.
- ``rss``: the process's private memory (resident set minus file-backed pages:
  transformers maps safetensors weights from the file, so they show up as shared pages
  whether or not they were read), sampled every 5 ms. This adds what glibc's allocator
  keeps after tensors are freed, and varies from run to run.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading

import psutil

from lftf_tasks.outputs import versions
from lftf_train import models
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune


def private_memory(process) -> int:
    info = process.memory_info()
    return info.rss - info.shared


class PeakRSS:
    def __init__(self):
        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, private_memory(self.process))
            self._stop.wait(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def train_one_epoch(model, tok, config, block) -> None:
    model = wrap_for_training(model, config, [block])  # the block copy counts as training's
    finetune(model, tok, config, [block], show_progress=False, log=lambda *_: None)


def extra_rss(model, tok, config, block) -> dict:
    gc.collect()
    loaded = private_memory(psutil.Process())
    with PeakRSS() as peak:
        train_one_epoch(model, tok, config, block)
    return {
        "private_loaded_mb": round(loaded / 2**20, 1),
        "private_peak_training_mb": round(peak.peak / 2**20, 1),
        "extra_bytes": peak.peak - loaded,
    }


def extra_tensors(model, tok, config, block) -> dict:
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action, MemoryProfileTimeline

    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        train_one_epoch(model, tok, config, block)
    timeline = MemoryProfileTimeline(prof._memory_profile())
    cpu = torch.device("cpu")
    _, sizes = timeline._coalesce_timeline(cpu)
    peak = int(np.asarray(sizes).sum(1).max())
    preexisting = sum(
        n
        for _, action, (key, _), n in timeline.timeline
        if action == Action.PREEXISTING and key.device == cpu
    )
    return {
        "preexisting_tensors_mb": round(preexisting / 2**20, 1),
        "peak_tensors_mb": round(peak / 2**20, 1),
        "extra_bytes": peak - preexisting,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--method", default="full", choices=["full", "lora"])
    parser.add_argument("--measure", default="tensors", choices=["tensors", "rss"])
    args = parser.parse_args()
    model, tok, _ = models.load(args.model)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    last = model.config.num_hidden_layers - 1
    config = LFTFConfig(model=args.model, blocks=[last], epochs=1, method=args.method)
    measure = extra_tensors if args.measure == "tensors" else extra_rss
    measured = measure(model, tok, config, last)
    extra = measured.pop("extra_bytes")
    result = {
        "model": args.model,
        "method": args.method,
        "measure": args.measure,
        "block": last,
        "weights_mb": round(weights / 2**20, 1),
        **measured,
        "extra_mb": round(extra / 2**20, 1),
        "ratio": round((weights + extra) / weights, 3),
        "versions": versions(),
    }
    print(json.dumps(result, indent=2))
    print(
        f"(weights + training's extra {args.measure} memory) / weights: {result['ratio']:.3f}"
        "  (target <= 1.3)"
    )


if __name__ == "__main__":
    main()
