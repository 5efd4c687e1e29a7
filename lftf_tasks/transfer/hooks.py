"""lm-eval hooks of the WinoBias and Winogender tasks: dataset loaders and per-doc scores.

The generated ``tasks/transfer/utils.py`` binds these; its yaml files point at them with
``!function utils.load_winobias`` and so on. A WinoBias doc makes two loglikelihood
requests, the pro- then the anti-stereotypical ending after the same context; a
Winogender prompt makes GenBiasEval's two, " he" and " she", and is scored the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from lftf_tasks.axis import group_logprobs_from_words, load_axis, prompt_scores
from lftf_tasks.labour import labour_items
from lftf_tasks.metrics import pair_scores


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _data_dir(data_dir: Path | None) -> Path:
    """``data_dir``, or the package's build in the lftf cache (made on first use)."""
    if data_dir is not None:
        return Path(data_dir)
    from lftf_tasks.build import data_dir as built

    return built()


def load_winobias(type: int | None = None, data_dir: Path | None = None, **kwargs):
    """WinoBias's dev and test splits, restricted to one type (1 or 2)."""
    import datasets

    return datasets.DatasetDict(
        {
            split: datasets.Dataset.from_list(
                [
                    doc
                    for doc in _read_jsonl(_data_dir(data_dir) / "winobias" / f"{split}.jsonl")
                    if type is None or doc["type"] == type
                ]
            )
            for split in ("dev", "test")
        }
    )


def load_winogender(data_dir: Path | None = None, **kwargs):
    """The next-pronoun prompts: a test split only (nothing here is for tuning)."""
    import datasets

    docs = _read_jsonl(_data_dir(data_dir) / "winogender" / "test.jsonl")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def doc_to_choice(doc: dict) -> list[str]:
    """The two endings, pro first: process_winobias_results reads them in this order."""
    return [doc["pro"], doc["anti"]]


def process_winobias_results(doc: dict, results: list) -> dict:
    (ll_pro, _), (ll_anti, _) = results
    return pair_scores(ll_pro, ll_anti)


def process_winogender_results(doc: dict, results: list) -> dict:
    """GenBiasEval's per-prompt scores (afgb, gap, p_he, ...) and the labour-fit items."""
    axis = load_axis("gender")
    word_logprobs = [ll for ll, _ in results]
    scores = prompt_scores(axis, group_logprobs_from_words(axis, word_logprobs))
    scores.update(labour_items(doc["occupation"], scores["gap"], doc["bls_pct_female"]))
    return scores
