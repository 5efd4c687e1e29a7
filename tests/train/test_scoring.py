"""The trainer's batched scores (tensors) equal the means of lm-eval's per-doc scores (the
task folders' process_results, floats) on random logits, for every shipped axis."""

import pytest
import torch

from lftf_tasks.axis import BUILTIN_AXES, load_axis
from lftf_tasks.hooks import TaskHooks
from lftf_tasks.slopes import SLOPE_METRICS
from lftf_train.scoring import bias_scores, group_logprobs, hint_scores, prompt_bias, slope_scores

from ..tasks.task_utils import THREE_GROUPS, load_task_utils

VOCAB = 500


def _hooks(axis):
    """The lm-eval hooks: the shipped task folder's generated utils.py, or a spec's own."""
    if axis.name in BUILTIN_AXES:
        return load_task_utils(axis.bias_task)
    return TaskHooks(axis)


def _random_logits(n: int, word_ids: list[int], seed: int) -> torch.Tensor:
    """Logits of varied shapes: plain noise, rows where the target words dominate, and rows
    where they are all but impossible (their probabilities underflow to 0)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, VOCAB, generator=g) * 3
    words = torch.tensor(word_ids)
    third = n // 3
    logits[:third, words] += 8 * torch.rand(third, len(word_ids), generator=g)
    logits[third : 2 * third, words] = -1e4
    return logits


@pytest.mark.parametrize(
    "axis", [*map(load_axis, BUILTIN_AXES), THREE_GROUPS], ids=lambda a: a.name
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trainer_scores_are_the_means_of_lm_evals_per_doc_scores(axis, seed):
    hooks = _hooks(axis)
    choices = axis.choices
    word_ids = torch.randperm(VOCAB, generator=torch.Generator().manual_seed(seed))[: len(choices)]
    group_ids, i = [], 0
    for group in axis.groups:
        group_ids.append(word_ids[i : i + len(group.words)].tolist())
        i += len(group.words)
    logits = _random_logits(60, word_ids.tolist(), seed)
    hinted = torch.randint(len(axis.groups), (60,), generator=torch.Generator().manual_seed(seed))

    # lm-eval: one loglikelihood per choice word, in doc_to_choice order
    word_logp = logits.float().log_softmax(-1)[:, word_ids]
    scores = torch.rand(60, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    records = [{"stereotypical": s, "definitional": f} for s, f in scores.tolist()]
    docs, hint_docs = [], []
    for row, h, record in zip(word_logp.tolist(), hinted.tolist(), records):
        results = [(ll, False) for ll in row]
        docs.append(hooks.process_bias_results({"prompt": "p", **record}, results))
        hint_doc = {"prompt": "p", axis.hint_field: axis.groups[h].name}
        hint_docs.append(hooks.process_hint_results(hint_doc, results))

    # the trainer: batched, from the same logits
    logp = group_logprobs(logits, group_ids)
    batched = bias_scores(logp, axis)
    assert set(batched) == set(docs[0]) - set(SLOPE_METRICS)  # the means
    for key, value in batched.items():
        per_doc = sum(d[key] for d in docs) / len(docs)
        assert value == pytest.approx(per_doc, rel=1e-6, abs=1e-9), key
    slopes = slope_scores(logp, records, axis)  # the least-squares aggregations
    assert set(slopes) == (set(SLOPE_METRICS) if axis.slopes else set())
    for metric, (_, aggregate) in SLOPE_METRICS.items():
        if axis.slopes:
            lm_eval_value = aggregate([d[metric] for d in docs])
            assert slopes[metric] == pytest.approx(lm_eval_value, rel=1e-5, abs=1e-9), metric
    hint = axis.metrics["hint"]
    per_doc = sum(d[hint] for d in hint_docs) / len(hint_docs)
    assert hint_scores(logp, hinted.tolist(), axis)[hint] == pytest.approx(per_doc, rel=1e-6)
    # float32 logsumexp over a group's words (trainer) against float64 sums (lm-eval hooks)
    per_prompt = prompt_bias(logp).tolist()
    expected = [d[axis.metrics["bias"]] for d in docs]
    assert per_prompt == pytest.approx(expected, rel=1e-6, abs=1e-9)
