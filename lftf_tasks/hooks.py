"""lm-eval hooks for any bias axis: dataset loaders and per-prompt scores.

Each task folder's generated ``utils.py`` binds these to its axis and data folder; its
yaml files point at them with ``!function utils.load_bias`` and so on. Every prompt is
scored from one loglikelihood request per group word (``doc_to_choice`` lists them in
group order, target delimiter " "), so a word that a tokenizer splits into several tokens
is scored by the probability of the whole continuation.
"""

from __future__ import annotations

import json
from pathlib import Path

from lftf_tasks.axis import SPLITS, Axis, group_logprobs_from_words, hint_score, prompt_scores
from lftf_tasks.labour import labour_items
from lftf_tasks.slopes import slope_items


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class TaskHooks:
    """An axis's hooks over a folder of its prompt files: ``data_dir``, or the package's
    build in the lftf cache (``lftf_tasks.build.data_dir``), made when a task first loads."""

    def __init__(self, axis: Axis, data_dir: Path | None = None):
        self.axis, self._data_dir = axis, None if data_dir is None else Path(data_dir)

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            from lftf_tasks.build import data_dir

            return data_dir()
        return self._data_dir

    def load_bias(self, scale: str | None = None, **kwargs):
        """The bias task's train/dev/test splits, restricted to one scale."""
        import datasets

        return datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list(
                    [
                        r
                        for r in _read_jsonl(self.data_dir / self.axis.bias_task / f"{split}.jsonl")
                        if scale is None or r["scale"] == scale
                    ]
                )
                for split in SPLITS
            }
        )

    def load_hint(self, **kwargs):
        """The hint task's test split and its dev split (other templates)."""
        import datasets

        return datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list(
                    _read_jsonl(self.data_dir / self.axis.hint_task / f"{split}.jsonl")
                )
                for split in ("dev", "test")
            }
        )

    def scores(self, results: list) -> dict:
        word_logprobs = [ll for ll, _ in results]
        return prompt_scores(self.axis, group_logprobs_from_words(self.axis, word_logprobs))

    def process_bias_results(self, doc: dict, results: list) -> dict:
        scores = self.scores(results)
        if self.axis.slopes:  # (signed gap, x_s, x_f) items for the stereotype slopes
            p1, p2 = (scores[f"p_{g.label}"] for g in self.axis.groups)
            scores.update(slope_items(p1, p2, doc["stereotypical"], doc["definitional"]))
        if self.axis.labour and "bls_pct_female" in doc:  # the labour fit's items:
            # (subject, signed gap, % female); a record without the field has no figure
            subject = doc[self.axis.subject_field]
            scores.update(labour_items(subject, scores["gap"], doc["bls_pct_female"]))
        return scores

    def process_hint_results(self, doc: dict, results: list) -> dict:
        scores = self.scores(results)
        probs = [scores[f"p_{g.label}"] for g in self.axis.groups]
        hinted = self.axis.group_index(doc[self.axis.hint_field])
        return {self.axis.metrics["hint"]: hint_score(probs, hinted), **scores}
