"""What MMLU adds to one report row on SmolLM2, measured side by side in one process: the
report's lm-eval pass (bias, hint and transfer tasks) alone, then `mmlu` and
`mmlu_continuation` on the first N test questions of each of the 57 subjects (the subset
`make demo` can afford). Needs LFTF_REFERENCE_DIR with capability/ (offline MMLU).

    python bench/mmlu_cost.py --batch-size 64 --out bench/results/mmlu_cost_smollm2_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from importlib.metadata import version


def main() -> None:
    from lftf_tasks.axis import load_axis
    from lftf_train.evaluate import Evaluation, general_metrics, run_lm_eval
    from lftf_train.models import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval's batch size")
    parser.add_argument("--firsts", default="1,2", help="questions per subject to time")
    parser.add_argument("--out", required=True, help="where the JSON goes")
    args = parser.parse_args()
    model_args = f"pretrained={resolve_model('smollm2-135m')},dtype=float32"
    runs = {}

    def timed(name: str, tasks: list[str] | None, general: list[str], n: int | None) -> None:
        ev = Evaluation(general_tasks=general, general_limit=n)
        start = time.perf_counter()
        results = run_lm_eval(
            model_args,
            tasks or ev.tasks(load_axis("gender")),
            batch_size=args.batch_size,
            log_samples=True,
            **ev.lm_eval_kwargs(),
        )
        runs[name] = {"seconds": round(time.perf_counter() - start, 1)}
        runs[name].update(general_metrics(results, general))
        print(name, runs[name], file=sys.stderr, flush=True)

    timed("bias, hint and transfer tasks", None, [], None)
    for n in (int(s) for s in args.firsts.split(",")):
        for task in ("mmlu", "mmlu_continuation"):
            timed(f"{task}, first {n} per subject", [task], [task], n)
    record = {
        "runs": runs,
        "batch_size": args.batch_size,
        "model": "smollm2-135m (float32)",
        "machine": f"{platform.processor() or platform.machine()}, cores: {_cores()}",
        "versions": {p: version(p) for p in ("lftf", "lm_eval", "torch", "transformers")},
        "note": "the first call that needs lm-eval's own task index builds it (~15 s)",
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
