import pytest
import torch
import torch.nn.functional as F

from lftf_train import data
from lftf_train import locating as locate


def test_bmi_from_hidden_states_matches_a_manual_computation(tiny_llama):
    _, model, tok = tiny_llama
    prompts = ["The nurse smiled because", "The adjunct professor went to bed because"]
    scores = locate.bmi_scores(model, tok, prompts, "hidden_states")
    assert len(scores) == 4
    expected = torch.zeros(4, dtype=torch.float64)
    for p in prompts:  # one prompt at a time: no padding involved
        hs = model(**tok(p, return_tensors="pt"), output_hidden_states=True).hidden_states
        for i in range(4):
            expected[i] += F.cosine_similarity(hs[i][0], hs[i + 1][0], dim=-1).mean().double()
    assert scores == pytest.approx((1 - expected / len(prompts)).tolist(), abs=1e-5)


def test_block_io_differs_from_hidden_states_only_at_the_last_block(tiny_llama):
    import copy

    _, model, tok = tiny_llama
    model = copy.deepcopy(model)
    with torch.no_grad():  # a final norm with non-uniform weights, as trained models have
        model.model.norm.weight.uniform_(0.2, 3.0)
    prompts = data.sample_prompts("train", 8, seed=0)
    hs = locate.bmi_scores(model, tok, prompts, "hidden_states", batch_size=3)
    io = locate.bmi_scores(model, tok, prompts, "block_io", batch_size=3)
    assert hs[:-1] == pytest.approx(io[:-1], abs=1e-5)  # the same H except after the final norm
    assert abs(hs[-1] - io[-1]) > 1e-3


def test_padding_does_not_change_bmi(tiny_llama):
    _, model, tok = tiny_llama
    prompts = data.sample_prompts("train", 6, seed=1)
    one_by_one = locate.bmi_scores(model, tok, prompts, "block_io", batch_size=1)
    batched = locate.bmi_scores(model, tok, prompts, "block_io", batch_size=6)
    assert one_by_one == pytest.approx(batched, abs=1e-5)


def test_ranking_and_seed_robustness():
    assert locate.ranking([0.1, 0.5, 0.5, 0.2]) == [1, 2, 3, 0]
    rob = locate.seed_robustness([[0.1, 0.9], [0.3, 0.7]])
    assert rob["per_block_variance"] == pytest.approx([0.01, 0.01])
    assert rob["mean_variance"] == pytest.approx(0.01)
    assert rob["top_block_per_seed"] == [1, 1] and rob["top_block_agreement"] == 1.0


def test_unknown_source_is_refused(tiny_llama):
    _, model, tok = tiny_llama
    with pytest.raises(ValueError, match="BMI source"):
        locate.bmi_scores(model, tok, ["The cook smiled because"], "attention")


def test_sampling_is_seeded_and_bounded():
    assert data.sample_prompts("train", 5, 1) == data.sample_prompts("train", 5, 1)
    assert data.sample_prompts("train", 5, 1) != data.sample_prompts("train", 5, 2)
    with pytest.raises(ValueError, match="943"):
        data.sample_prompts("train", 1000, 1)
