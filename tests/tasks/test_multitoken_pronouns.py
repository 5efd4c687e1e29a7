"""A tokenizer that splits " he" into several tokens still gets a defined score."""

import pytest
import torch

from lftf_tasks import task_manager


def test_multi_token_pronoun_scores_the_whole_continuation(char_model):
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    _, model, tok = char_model
    assert len(tok(" he").input_ids) == 3 and len(tok(" she").input_ids) == 4
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=8)
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["genbiaseval_word"],
        limit=4,
        task_manager=task_manager(include_defaults=False),
        log_samples=True,
    )
    samples = out["samples"]["genbiaseval_word"]
    assert len(samples) == 4
    for s in samples:
        prompt = s["doc"]["prompt"]
        for word, key in ((" he", "log_p_he"), (" she", "log_p_she")):
            ids = tok(prompt + word, return_tensors="pt").input_ids
            n = len(tok(word).input_ids)
            with torch.no_grad():
                logp = model(ids).logits[0, :-1].log_softmax(-1)
            expected = logp[torch.arange(ids.shape[1] - 1 - n, ids.shape[1] - 1), ids[0, -n:]]
            assert s[key] == pytest.approx(expected.sum().item(), abs=1e-4)
        assert 0 <= s["afgb"] <= 1 and s["pronoun_mass"] > 0
    assert 0 <= out["results"]["genbiaseval_word"]["afgb,none"] < 1
