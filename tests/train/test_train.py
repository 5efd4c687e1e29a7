import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from lftf_tasks.axis import load_axis
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import (
    BestEpochTracker,
    best_epoch,
    epoch_batches,
    finetune,
    lftf_loss,
)

GENDER = load_axis("gender")


def test_loss_is_the_sum_of_negative_log_likelihoods_of_the_chosen_terms():
    logp = torch.log(torch.tensor([[0.5, 0.25], [0.1, 0.4]]))
    both = (-(math.log(0.5) + math.log(0.25)) - (math.log(0.1) + math.log(0.4))) / 2
    assert lftf_loss(logp, [0, 1]).item() == pytest.approx(both)
    assert lftf_loss(logp, [0]).item() == pytest.approx(-(math.log(0.5) + math.log(0.1)) / 2)
    assert lftf_loss(logp, [1]).item() == pytest.approx(-(math.log(0.25) + math.log(0.4)) / 2)


def test_loss_is_minimal_at_equal_pronoun_probabilities():
    # -log a - log(1 - a) over the simplex edge a + b = 1: minimal at a = b = 0.5.
    a = torch.linspace(0.01, 0.99, 99)
    values = [lftf_loss(torch.log(torch.stack([x, 1 - x]))[None], [0, 1]) for x in a]
    assert a[int(torch.stack(values).argmin())].item() == pytest.approx(0.5)


def test_k_group_loss_is_minimal_when_every_group_is_equally_likely():
    torch.manual_seed(0)
    uniform = torch.full((1, 4), 0.2).log()  # four groups of 0.2 each, 0.2 left elsewhere
    for _ in range(200):
        p = torch.rand(1, 4)
        p = 0.8 * p / p.sum()  # the same total mass, spread unevenly
        assert lftf_loss(p.log(), [0, 1, 2, 3]) >= lftf_loss(uniform, [0, 1, 2, 3]) - 1e-6


def _train(tiny_llama, naive=False, **overrides):
    path, _, tok = tiny_llama
    config = LFTFConfig(**{"blocks": "2", "epochs": 2, "lr": 1e-3, "seed": 7, **overrides})
    model = wrap_for_training(AutoModelForCausalLM.from_pretrained(path), config, config.blocks)
    result = finetune(
        model, tok, config, config.blocks, naive=naive, show_progress=False, log=lambda *_: None
    )
    return model, result


def test_cached_prefix_losses_equal_the_naive_full_forward(tiny_llama):
    _, cached = _train(tiny_llama)
    _, naive = _train(tiny_llama, naive=True)
    assert len(cached.step_losses) == len(naive.step_losses) == 2 * math.ceil(943 / 32)
    worst = max(abs(a - b) for a, b in zip(cached.step_losses, naive.step_losses))
    assert worst < 1e-5
    assert cached.step_losses[-1] < cached.step_losses[0]  # it learns
    for a, b in zip(cached.history, naive.history):
        assert a["dev"] == pytest.approx(b["dev"], abs=1e-5)


def test_gradients_and_optimizer_state_exist_only_for_the_trained_block(tiny_llama):
    model, result = _train(tiny_llama, epochs=1)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all("model.layers.2." in n for n in trained)
    assert result.optimized_parameters == sum(p.numel() for p in trained.values())
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen)
    base_block = model.base_model.model.model.layers[2].original_module
    copy = model.base_model.model.model.layers[2].modules_to_save["default"]
    assert not torch.equal(base_block.mlp.up_proj.weight, copy.mlp.up_proj.weight)


def test_select_best_dev_keeps_the_epoch_with_lowest_dev_afgb(tiny_llama):
    from lftf_train import data
    from lftf_train.scoring import bias_scores, score_prompts

    model, result = _train(tiny_llama, epochs=3, lr=3e-3, select="best_dev", min_ub_ratio=0)
    best = min(result.history, key=lambda h: h["dev"]["afgb"])
    assert result.best_epoch == best["epoch"] != 3  # not simply the last epoch
    _, _, tok = tiny_llama
    dev = score_prompts(model, tok, [r["prompt"] for r in data.bias_records("dev")])
    assert bias_scores(dev, GENDER)["afgb"] == pytest.approx(best["dev"]["afgb"], abs=1e-5)


def _epoch(epoch, afgb, ub):
    return {"epoch": epoch, "dev": {"afgb": afgb, "ub": ub}}


METRICS = {"bias": "afgb", "hint": "ub"}


def test_best_epoch_is_the_lowest_dev_afgb_that_keeps_hint_following():
    history = [_epoch(0, 0.13, 0.40), _epoch(1, 0.05, 0.35), _epoch(2, 0.03, 0.30)]
    assert best_epoch(history, 0.8, METRICS) == 1  # epoch 2 is fairer but keeps only 75% of UB
    assert best_epoch(history, 0.0, METRICS) == 2
    assert best_epoch(history, 1.0, METRICS) == 0  # nothing keeps all of UB: keep the original
    assert best_epoch([_epoch(0, 0.1, -0.2), _epoch(1, 0.05, -0.3)], 0.8, METRICS) == 1
    ties = [_epoch(0, 0.1, 0.4), _epoch(1, 0.05, 0.4), _epoch(2, 0.05, 0.4)]
    assert best_epoch(ties, 0.8, METRICS) == 1


def test_best_epoch_reads_the_axis_metric_names():
    history = [
        {"epoch": 0, "dev": {"range": 0.3, "hint_score": 0.2}},
        {"epoch": 1, "dev": {"range": 0.1, "hint_score": 0.19}},
    ]
    assert best_epoch(history, 0.8, {"bias": "range", "hint": "hint_score"}) == 1


def test_tracker_restores_the_best_weights_and_stops_after_patience():
    model = torch.nn.Linear(2, 1)
    config = LFTFConfig(select="best_dev", patience=2, min_ub_ratio=0.0)
    tracker = BestEpochTracker(model, config, METRICS)
    history = [_epoch(0, 0.5, 0.4)]
    for epoch, afgb in enumerate([0.2, 0.3, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        history.append(_epoch(epoch, afgb, 0.4))
        stop = tracker.update(history)
        assert stop == (epoch == 3)  # epochs 2 and 3 bring no new best
    assert tracker.best == 1
    tracker.restore()
    assert torch.all(model.weight == 1.0)


def test_epoch_batches_are_seeded_and_shared_out_among_processes():
    one = epoch_batches(10, 4, seed=7, epoch=1, world=1)
    assert [len(b) for b in one] == [4, 4, 2] and sorted(sum(one, [])) == list(range(10))
    assert one == epoch_batches(10, 4, seed=7, epoch=1, world=1)
    assert one != epoch_batches(10, 4, seed=7, epoch=2, world=1)
    assert [len(b) for b in epoch_batches(10, 4, seed=7, epoch=1, world=3)] == [4, 4]


def test_nan_loss_is_a_clear_error(tiny_llama):
    path, _, tok = tiny_llama
    config = LFTFConfig(blocks="3", epochs=1)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.model.layers[3].mlp.down_proj.weight.fill_(float("nan"))
    model = wrap_for_training(model, config, [3])
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1, step 0"):
        finetune(model, tok, config, [3], show_progress=False, log=lambda *_: None)


def test_same_seed_same_losses(tiny_llama):
    _, a = _train(tiny_llama, epochs=1)
    _, b = _train(tiny_llama, epochs=1)
    assert a.step_losses == b.step_losses


def test_a_k_group_axis_trains_on_its_own_prompts_with_its_own_loss(tiny_llama):
    """Religion: four groups, so the first step's loss is the mean of -sum_g log P(g) over
    the first batch of religion-train prompts, computed here by hand."""
    from lftf_train import data
    from lftf_train.scoring import encode, group_logprobs, target_token_ids

    path, _, tok = tiny_llama
    axis = LFTFConfig(axis="religion").load_axis()
    model, result = _train(tiny_llama, axis="religion", epochs=1)
    assert set(result.history[0]["dev"]) >= {f"p_{g}" for g in axis.labels}
    assert "gap" not in result.history[0]["dev"]  # a two-group score only
    prompts = [r["prompt"] for r in data.bias_records("train", axis)]
    order = torch.randperm(len(prompts), generator=torch.Generator().manual_seed(7 * 1009 + 1))
    first = [prompts[i] for i in order[:32].tolist()]
    fresh = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        logits = fresh(**encode(tok, first), logits_to_keep=1).logits[:, -1]
    expected = -group_logprobs(logits, target_token_ids(tok, axis)).sum(-1).mean().item()
    assert result.step_losses[0] == pytest.approx(expected, rel=1e-4)
    assert result.step_losses[-1] < result.step_losses[0]


def test_axis_terms_are_checked_against_the_axis_groups():
    assert LFTFConfig(axis="religion").terms == ["christianity", "islam", "judaism", "hinduism"]
    assert LFTFConfig(axis="religion", terms="islam").terms == ["islam"]
    with pytest.raises(ValueError, match="terms"):
        LFTFConfig(axis="religion", terms="he")
    with pytest.raises(ValueError, match="axis"):
        LFTFConfig(axis="no_such_axis.yaml")
