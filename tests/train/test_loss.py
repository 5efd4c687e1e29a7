"""The split loss and the KL that keeps the rest of the next-token distribution (loss.py),
and the trainer running them."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.loss import kept_kl, merged_logprobs, nll_loss, split_loss
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune
from lftf_train.scoring import group_logprobs, score_prompts, target_token_ids


def test_split_loss_is_minimal_at_an_even_split_whatever_the_mass():
    for mass in (0.05, 0.3, 0.99):
        a = torch.linspace(0.01, 0.99, 99)
        values = torch.stack(
            [split_loss(torch.log(mass * torch.stack([x, 1 - x]))[None], [0, 1]) for x in a]
        )
        assert a[int(values.argmin())].item() == pytest.approx(0.5)
        assert values.min().item() == pytest.approx(math.log(2), abs=1e-6)
    # the paper's loss prefers more mass at the same split; the split loss does not care
    low, high = torch.log(torch.tensor([[0.1, 0.1]])), torch.log(torch.tensor([[0.4, 0.4]]))
    assert nll_loss(high, [0, 1]) < nll_loss(low, [0, 1])
    assert split_loss(high, [0, 1]).item() == pytest.approx(split_loss(low, [0, 1]).item())


def test_split_loss_by_hand_and_for_one_term():
    logp = torch.log(torch.tensor([[0.3, 0.1], [0.2, 0.2]]))
    both = (-(math.log(0.75) + math.log(0.25)) / 2 - math.log(0.5)) / 2
    assert split_loss(logp, [0, 1]).item() == pytest.approx(both)
    assert split_loss(logp, [1]).item() == pytest.approx(-(math.log(0.25) + math.log(0.5)) / 2)


def test_kept_kl_ignores_the_split_and_sees_everything_else():
    torch.manual_seed(0)
    logits = torch.randn(3, 10)
    groups = [[2], [5, 7]]
    reference = merged_logprobs(logits, groups)
    assert merged_logprobs(logits, groups).exp().sum(-1) == pytest.approx(torch.ones(3))
    assert kept_kl(reference, logits, groups).item() == pytest.approx(0.0, abs=1e-7)
    probs = logits.softmax(-1)
    moved = probs.clone()  # move mass between the groups' words, the total kept
    moved[:, 2], moved[:, 5], moved[:, 7] = probs[:, 7], probs[:, 2] + probs[:, 5], 0.0
    moved[:, 7] = 1e-12
    assert kept_kl(reference, moved.log(), groups).item() == pytest.approx(0.0, abs=1e-5)
    other = probs.clone()  # move mass from a group word to another token
    other[:, 0], other[:, 2] = probs[:, 0] + probs[:, 2], 1e-12
    assert kept_kl(reference, other.log(), groups).item() > 1e-3


def test_split_loss_with_kl_evens_the_split_and_keeps_the_mass(tiny_llama):
    path, _, tok = tiny_llama
    prompts = ["The nurse smiled because", "The doctor went to bed because"]
    original = score_prompts(AutoModelForCausalLM.from_pretrained(path), tok, prompts).exp()
    results = {}
    for loss, kl in (("nll", 0.0), ("split", 1.0)):
        config = LFTFConfig(blocks="2", epochs=2, lr=3e-3, seed=7, loss=loss, kl_weight=kl)
        model = wrap_for_training(AutoModelForCausalLM.from_pretrained(path), config, [2])
        run = finetune(model, tok, config, [2], show_progress=False, log=lambda *_: None)
        results[loss] = (run, score_prompts(model, tok, prompts).exp())
    (_, nll_p), (split_run, split_p) = results["nll"], results["split"]
    assert split_run.step_losses[-1] < split_run.step_losses[0]
    gap = lambda p: (p[:, 0] - p[:, 1]).abs() / p.sum(-1)  # noqa: E731
    assert gap(split_p).mean() < gap(original).mean()
    mass = lambda p: p.sum(-1).mean().item()  # noqa: E731
    assert abs(mass(split_p) - mass(original)) < 0.5 * abs(mass(nll_p) - mass(original))


def test_kl_reference_is_the_untrained_models_distribution(tiny_llama):
    from lftf_train import data
    from lftf_train.logits import FullForward
    from lftf_train.methods.lftf.train import reference_logprobs

    path, base, tok = tiny_llama
    prompts = {"train": data.training_prompts()["train"][:5]}
    source = FullForward(tok, prompts, "cpu")
    groups = target_token_ids(tok)
    merged = lambda logits: merged_logprobs(logits, groups)  # noqa: E731
    reference = reference_logprobs(base, source, merged, "train", batch_size=2)
    logits = source.logits(base, "train", list(range(5)))
    assert torch.allclose(reference, merged_logprobs(logits, groups), atol=1e-6)
    assert torch.allclose(
        group_logprobs(logits, groups), score_prompts(base, tok, prompts["train"]), atol=1e-5
    )


def test_bad_kl_weight_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="kl_weight"):
        LFTFConfig(kl_weight=-1)
    with pytest.raises(ValueError, match="loss"):
        LFTFConfig(loss="mse")


def test_anchor_prompts_use_templates_of_their_own():
    from lftf_tasks.axis import load_axis
    from lftf_train import data

    axis = load_axis("gender")
    anchors = data.anchor_prompts(axis)
    assert len(anchors) == 3 * len(axis.subjects)
    assert sum(" his " in p for p in anchors) == sum(" her " in p for p in anchors)
    hint_prompts = {r["prompt"] for s in ("dev", "test") for r in data.hint_records(s, axis)}
    assert not hint_prompts & set(anchors)
    with pytest.raises(ValueError, match="anchor_weight"):
        LFTFConfig(axis="religion", anchor_weight=1.0)


def test_all_three_terms_give_the_same_losses_cached_and_naive(tiny_llama):
    path, _, tok = tiny_llama
    fields = {"loss": "split", "kl_weight": 1.0, "anchor_weight": 1.0}
    config = LFTFConfig(blocks="2", epochs=1, lr=1e-3, seed=7, **fields)
    runs = []
    for naive in (False, True):
        model = wrap_for_training(AutoModelForCausalLM.from_pretrained(path), config, [2])
        runs.append(
            finetune(model, tok, config, [2], naive=naive, show_progress=False, log=lambda *_: None)
        )
    cached, naive = runs
    # step 1 starts from the original: both KL terms are 0 and the loss is the split's alone
    assert cached.step_losses[0] == pytest.approx(naive.step_losses[0], abs=1e-5)
    assert max(abs(a - b) for a, b in zip(cached.step_losses, naive.step_losses)) < 1e-4
