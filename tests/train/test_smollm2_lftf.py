"""LFTF on the embedded SmolLM2-135M-Instruct: it works, and its outputs load in lm-eval.

The README's recipe is trained once per session (conftest.smollm2_lftf) and scored with a
real `lm_eval` run from the saved adapter; the original model's run is shared too.
"""

from pathlib import Path

import pytest

from lftf_train.evaluate import bias_summary
from lftf_train.locating import locate_blocks
from lftf_train.methods.lftf.config import LFTFConfig

from ..helpers import (
    finetune_smollm2,
    in_memory_probabilities,
    lm_eval_probabilities,
    max_probability_diff,
)

pytestmark = pytest.mark.smollm2


def test_same_seed_same_bmi_ranking_and_scores(smollm2):
    model, tok = smollm2
    config = LFTFConfig(seed=3)
    a = locate_blocks(model, tok, config, show_progress=False)
    b = locate_blocks(model, tok, config, show_progress=False)
    assert a["ranking"] == b["ranking"]
    for source in a["scores"]:
        assert max(abs(x - y) for x, y in zip(a["scores"][source], b["scores"][source])) < 1e-6
    # the README's claims: the two sources disagree on SmolLM2; blocks='auto' trains block 29
    assert a["top_block"] == {"hidden_states": 29, "block_io": 0}


def test_lm_eval_peft_flag_loads_exactly_the_trained_model(
    smollm2, smollm2_lftf, smollm2_lftf_lm_eval, smollm2_lm_eval, smollm2_path
):
    model, _, out = smollm2_lftf
    in_memory = in_memory_probabilities(model, smollm2[1])
    assert max_probability_diff(lm_eval_probabilities(smollm2_lftf_lm_eval), in_memory) < 1e-4
    assert (
        max_probability_diff(lm_eval_probabilities(smollm2_lm_eval), in_memory) > 1e-2
    )  # it changed the model
    full_size = (Path(smollm2_path) / "model.safetensors").stat().st_size
    assert (out / "adapter_model.safetensors").stat().st_size < full_size / 10


def test_merged_model_loads_with_pretrained_alone(smollm2, smollm2_lftf):
    import lm_eval

    from lftf_tasks import task_manager

    model, _, out = smollm2_lftf
    run = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={out / 'merged'}",
        tasks=["genbiaseval_word", "genhinteval"],
        device="cpu",
        limit=40,
        log_samples=True,
        task_manager=task_manager(include_defaults=False),
    )
    in_memory = in_memory_probabilities(model, smollm2[1])
    logged = lm_eval_probabilities(run)
    assert set(logged) == set(in_memory)
    assert max_probability_diff(logged, in_memory) < 1e-4


def test_lftf_recipe_cuts_test_afgb_by_two_thirds_and_keeps_ub(
    smollm2_lftf, smollm2_lftf_lm_eval, smollm2_lm_eval
):
    """The README's numbers: settings chosen on dev (`lftf-train sweep`), scored by lm-eval
    on the test splits: AFGB 0.1303 -> 0.0435, UB 0.3961 -> 0.4223."""
    from lftf_tasks.axis import load_axis

    _, result, _ = smollm2_lftf
    gender = load_axis("gender")
    before = bias_summary(smollm2_lm_eval["results"], gender)
    after = bias_summary(smollm2_lftf_lm_eval["results"], gender)
    assert before["afgb_avg"] == pytest.approx(0.1303, abs=1e-4)
    assert before["ub"] == pytest.approx(0.3961, abs=1e-4)
    assert after["afgb_avg"] == pytest.approx(0.0435, abs=1e-4)
    assert after["ub"] == pytest.approx(0.4223, abs=1e-4)
    assert len(result["history"]) == 8 and result["best_epoch"] == 7


def test_fpft_drives_ub_toward_zero(smollm2_path, smollm2):
    """The paper's finding: training every block with the same loss forgets the hints."""
    _, result = finetune_smollm2(
        smollm2_path, smollm2, None, blocks="all", lr=1e-4, epochs=1, seed=1
    )
    before, after = result.history[0]["dev"], result.history[-1]["dev"]
    assert before["ub"] > 0.3
    assert abs(after["ub"]) < 0.1 * before["ub"]
    assert after["afgb"] < before["afgb"]


@pytest.mark.parametrize("term, sign", [("he", 1), ("she", -1)])
def test_one_loss_term_drives_afgb_toward_one(smollm2_path, smollm2, smollm2_cache, term, sign):
    """The paper's w/o-he and w/o-she ablations: one pronoun takes all the mass."""
    settings = {"blocks": "29", "terms": term, "lr": 1e-4, "epochs": 1, "seed": 1}
    _, result = finetune_smollm2(smollm2_path, smollm2, smollm2_cache, **settings)
    after = result.history[-1]["dev"]
    assert after["afgb"] > 0.95
    assert sign * after["gap"] > 0.95
