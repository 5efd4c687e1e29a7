"""The prompts LFTF trains and scores on: GenBiasEval splits and GenHintEval, as shipped."""

from __future__ import annotations

import json
import random

from lftf_tasks import DATA_DIR

SPLITS = ("train", "dev", "test")


def _read(rel: str) -> list[dict]:
    with (DATA_DIR / rel).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def genbiaseval(split: str) -> list[dict]:
    if split not in SPLITS:
        raise ValueError(f"GenBiasEval has splits {SPLITS}, not {split!r}")
    return _read(f"genbiaseval/{split}.jsonl")


def genhinteval(split: str = "test") -> list[dict]:
    """GenHintEval: 'test' is the paper's 786 prompts, 'dev' our 786 from other templates."""
    if split not in ("dev", "test"):
        raise ValueError(f"GenHintEval has splits ('dev', 'test'), not {split!r}")
    return _read(f"genhinteval/{split}.jsonl")


def sample_prompts(split: str, n: int, seed: int) -> list[str]:
    """n prompts of a GenBiasEval split drawn without replacement by a seeded shuffle."""
    prompts = [r["prompt"] for r in genbiaseval(split)]
    if n > len(prompts):
        raise ValueError(f"asked for {n} prompts but GenBiasEval-{split} has {len(prompts)}")
    return random.Random(seed).sample(prompts, n)
