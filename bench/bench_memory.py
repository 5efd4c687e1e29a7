"""Peak memory of LFTF training against the model's weights (CPU).

    python bench/bench_memory.py [--model smollm2-135m]

Samples the process's private memory (resident set minus file-backed pages: transformers
maps safetensors weights from the file, so they show up as shared pages whether or not
they were read) every 5 ms while one epoch trains the last block, and reports
(weights + the rise of private memory over the loaded model) / weights (target <= 1.3).
On a GPU, bench/gpu_bench.py reports the same ratio from torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading

import psutil

from lftf_train import models
from lftf_train.adapters import wrap_for_training
from lftf_train.config import LFTFConfig
from lftf_train.outputs import versions
from lftf_train.train import finetune


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--method", default="full", choices=["full", "lora"])
    args = parser.parse_args()
    model, tok, _ = models.load(args.model)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    last = model.config.num_hidden_layers - 1
    config = LFTFConfig(model=args.model, blocks=[last], epochs=1, method=args.method)
    gc.collect()
    loaded = private_memory(psutil.Process())  # the adapter's block copy counts as training's
    with PeakRSS() as peak:
        model = wrap_for_training(model, config, [last])
        finetune(model, tok, config, [last], show_progress=False, log=lambda *_: None)
    extra = peak.peak - loaded
    result = {
        "model": args.model,
        "method": args.method,
        "block": last,
        "weights_mb": round(weights / 2**20, 1),
        "private_loaded_mb": round(loaded / 2**20, 1),
        "private_peak_training_mb": round(peak.peak / 2**20, 1),
        "ratio": round((weights + extra) / weights, 3),
        "versions": versions(),
    }
    print(json.dumps(result, indent=2))
    print(f"(weights + training's extra memory) / weights: {result['ratio']:.3f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
