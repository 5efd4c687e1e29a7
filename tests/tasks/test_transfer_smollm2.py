"""A real lm-eval run of WinoBias and Winogender on the embedded SmolLM2 model, checked
against transformers directly: the pair log-likelihoods and P(he)/P(she) it logs."""

import math

import pytest
import torch

from lftf_tasks import task_manager

from .test_lm_eval_smollm2 import direct_probabilities

pytestmark = pytest.mark.smollm2
LIMIT = 8


@pytest.fixture(scope="module")
def run(smollm2_path):
    import lm_eval

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={smollm2_path},dtype=float32",
        tasks=["winobias_type1", "winogender_next"],
        device="cpu",
        batch_size=16,
        limit=LIMIT,
        log_samples=True,
        task_manager=task_manager(include_defaults=False),
    )


def continuation_logprob(model, tok, context: str, continuation: str) -> float:
    """log P(continuation | context): the sum of the continuation tokens' log-probabilities,
    its tokens being those of context + continuation after the context's own (the split
    lm-eval's hf model makes), in one unpadded forward pass."""
    whole = tok(context + continuation).input_ids
    n_context = len(tok(context).input_ids)
    assert whole[:n_context] == tok(context).input_ids  # the cut falls between tokens
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0].double()
    logprobs = logits.log_softmax(-1)
    return sum(logprobs[i - 1, whole[i]].item() for i in range(n_context, len(whole)))


def test_pair_log_likelihoods_equal_a_direct_computation(run, smollm2):
    model, tok = smollm2
    samples = run["samples"]["winobias_type1"]
    assert len(samples) == LIMIT
    for s in samples:
        doc = s["doc"]
        assert [tuple(a) for a in s["arguments"]] == [
            (doc["context"], " " + doc["pro"]),
            (doc["context"], " " + doc["anti"]),
        ]
        logged = [float(r[0][0]) for r in s["resps"]]
        direct = [
            continuation_logprob(model, tok, doc["context"], " " + doc[k]) for k in ("pro", "anti")
        ]
        # lm-eval sums float32 log-softmaxes (~1e-5 each), the direct path float64 ones:
        # over an ending of ~15 tokens they differ by up to ~1.5e-4 on this machine
        assert logged == pytest.approx(direct, abs=5e-4)
        assert s["ll_diff"] == pytest.approx(logged[0] - logged[1], abs=1e-9)
        assert s["pct_pro"] == float(logged[0] > logged[1])
    share = sum(s["pct_pro"] for s in samples) / LIMIT
    assert run["results"]["winobias_type1"]["pro_gap,none"] == pytest.approx(abs(share - 0.5))


def test_winogender_probabilities_equal_a_direct_softmax(run, smollm2):
    model, tok = smollm2
    samples = run["samples"]["winogender_next"]
    assert len(samples) == LIMIT
    direct = direct_probabilities(model, tok, [s["doc"]["prompt"] for s in samples])
    for s, (p_he, p_she) in zip(samples, direct):
        assert (s["p_he"], s["p_she"]) == pytest.approx((p_he, p_she), abs=1e-4)
        assert s["afgb"] == pytest.approx(abs(s["p_he"] - s["p_she"]))
        assert s["p_he"] == pytest.approx(math.exp(float(s["resps"][0][0][0])), rel=1e-9)
    occupations = {s["doc"]["occupation"] for s in samples}
    assert len(occupations) >= 2  # so the fit is defined
    assert not math.isnan(run["results"]["winogender_next"]["bls_slope,none"])
