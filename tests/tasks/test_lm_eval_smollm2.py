"""A real lm-eval run on the embedded SmolLM2 model: the README's Python example, as written."""

import math

import pytest
import torch

pytestmark = pytest.mark.smollm2


@pytest.fixture(scope="module")
def lm_eval_run(smollm2_lm_eval):
    """The session's lm-eval run of genbiaseval,genhinteval on SmolLM2 (conftest)."""
    return smollm2_lm_eval["results"], smollm2_lm_eval["samples"]


def direct_probabilities(model, tok, prompts, batch_size=64):
    """P(" he"), P(" she") from a plain softmax over the next-token logits (right padding,
    the head applied at each prompt's last real token: not lftf's own code path)."""
    he, she = tok(" he").input_ids[-1], tok(" she").input_ids[-1]
    tok.padding_side = "right"
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            hidden = model.model(**enc).last_hidden_state
            last = enc.attention_mask.sum(1) - 1
            logits = model.lm_head(hidden[torch.arange(len(last)), last])
        probs = logits.double().softmax(-1)
        out += list(zip(probs[:, he].tolist(), probs[:, she].tolist()))
    return out


def test_logged_probabilities_equal_a_direct_softmax(lm_eval_run, smollm2):
    _, samples = lm_eval_run
    model, tok = smollm2
    assert set(samples) == {
        "genbiaseval_word",
        "genbiaseval_phrase",
        "genbiaseval_sentence",
        "genhinteval",
    }
    rows = [s for task in sorted(samples) for s in samples[task]]
    assert len(rows) == 944 + 786
    direct = direct_probabilities(model, tok, [s["doc"]["prompt"] for s in rows])
    worst = max(
        max(abs(s["p_he"] - p_he), abs(s["p_she"] - p_she))
        for s, (p_he, p_she) in zip(rows, direct)
    )
    assert worst < 1e-4
    for s in rows:  # the logged log-likelihoods are what the scores came from
        assert s["p_he"] == pytest.approx(math.exp(float(s["resps"][0][0][0])), rel=1e-9)


def test_group_afgb_is_the_size_weighted_mean_of_the_scales(lm_eval_run):
    results, samples = lm_eval_run
    scales = ["genbiaseval_word", "genbiaseval_phrase", "genbiaseval_sentence"]
    sizes = [results["n-samples"][t]["effective"] for t in scales]
    assert sizes == [308, 330, 306]
    for metric in ("afgb", "pronoun_mass", "relative_gap"):
        per_scale = [results["results"][t][f"{metric},none"] for t in scales]
        weighted = sum(v * n for v, n in zip(per_scale, sizes)) / sum(sizes)
        assert results["results"]["genbiaseval"][f"{metric},none"] == pytest.approx(weighted)
        pooled = [s[metric] for t in scales for s in samples[t]]
        assert weighted == pytest.approx(sum(pooled) / len(pooled))
    assert results["results"]["genbiaseval"]["afgb_stderr,none"] > 0


def test_ub_and_afgb_aggregate_the_per_prompt_scores(lm_eval_run):
    results, samples = lm_eval_run
    hint = samples["genhinteval"]
    mean_ub = sum(s["ub"] for s in hint) / len(hint)
    assert results["results"]["genhinteval"]["ub,none"] == pytest.approx(mean_ub)
    assert results["results"]["genhinteval"]["ub_stderr,none"] > 0
    for s in hint:
        sign = 1 if s["doc"]["hint"] == "his" else -1
        assert s["ub"] == pytest.approx(sign * (s["p_he"] - s["p_she"]))
    # SmolLM2 follows an explicit hint far more than it leans on a profession.
    assert results["results"]["genhinteval"]["ub,none"] > 0.2
    assert results["results"]["genbiaseval"]["afgb,none"] > 0.05


def test_stereotype_slopes_are_the_fits_of_the_logged_samples(lm_eval_run):
    import numpy as np

    results, samples = lm_eval_run
    scales = ["genbiaseval_word", "genbiaseval_phrase", "genbiaseval_sentence"]
    sizes = [results["n-samples"][t]["effective"] for t in scales]
    for metric, column in (("a_s", 1), ("a_f", 2), ("a_intercept", 0)):
        per_scale = []
        for task in scales:
            rows = samples[task]
            x = np.array([[1, s["doc"]["stereotypical"], s["doc"]["definitional"]] for s in rows])
            y = np.array([s["p_he"] - s["p_she"] for s in rows])
            fit = np.linalg.lstsq(x, y, rcond=None)[0][column]
            assert results["results"][task][f"{metric},none"] == pytest.approx(fit, rel=1e-6)
            per_scale.append(fit)
        weighted = sum(v * n for v, n in zip(per_scale, sizes)) / sum(sizes)
        group = results["results"]["genbiaseval"][f"{metric},none"]
        assert group == pytest.approx(weighted, rel=1e-6)
    # SmolLM2 follows the stereotypes: a clearly positive stereotype slope
    assert results["results"]["genbiaseval"]["a_s,none"] > 0.05
