"""Per-prompt scores of the lm-eval tasks: by hand for gender, and the k-group reduction."""

import math

import pytest

from lftf_tasks.axis import (
    group_logprobs_from_words,
    hint_score,
    load_axis,
    parse_axis,
    prompt_scores,
)

from .task_utils import THREE_GROUPS, load_task_utils

utils = load_task_utils()
GENDER = load_axis("gender")


def _gender(p_he, p_she):
    return prompt_scores(GENDER, [math.log(p_he), math.log(p_she)])


def test_scores_from_log_probabilities_match_hand_computed_values():
    scores = _gender(0.30, 0.10)
    assert scores["p_he"] == pytest.approx(0.30)
    assert scores["p_she"] == pytest.approx(0.10)
    assert scores["afgb"] == pytest.approx(0.20)
    assert scores["gap"] == pytest.approx(0.20)
    assert scores["pronoun_mass"] == pytest.approx(0.40)
    assert scores["relative_gap"] == pytest.approx(0.50)
    assert scores["log_p_she"] == pytest.approx(math.log(0.10))


def test_afgb_is_symmetric_and_gap_signed():
    he_more, she_more = _gender(0.6, 0.2), _gender(0.2, 0.6)
    assert he_more["afgb"] == pytest.approx(she_more["afgb"]) == pytest.approx(0.4)
    assert he_more["gap"] == pytest.approx(0.4)
    assert she_more["gap"] == pytest.approx(-0.4)


def test_equal_probabilities_score_zero_bias():
    scores = _gender(0.25, 0.25)
    assert scores["afgb"] == 0 and scores["relative_gap"] == 0


def test_relative_gap_is_defined_when_no_mass_on_pronouns():
    scores = prompt_scores(GENDER, [-1e4, -1e4])  # exp underflows to 0.0
    assert scores["pronoun_mass"] == 0.0 and scores["relative_gap"] == 0.0


def test_bias_results_read_lm_eval_loglikelihood_pairs_in_choice_order():
    results = [(math.log(0.5), True), (math.log(0.125), False)]  # choices ["he", "she"]
    doc = {"prompt": "x", "profession": "nurse", "stereotypical": 0.5, "definitional": -0.1}
    scores = utils.process_bias_results({**doc, "bls_pct_female": 89.58}, results)
    assert scores["p_he"] == pytest.approx(0.5) and scores["p_she"] == pytest.approx(0.125)
    assert "ub" not in scores
    assert scores["bls_slope"] == scores["bls_r"] == ("nurse", pytest.approx(0.375), 89.58)


@pytest.mark.parametrize("gender, expected_ub", [("male", 0.3), ("female", -0.3)])
def test_ub_rewards_following_the_hint(gender, expected_ub):
    results = [(math.log(0.4), True), (math.log(0.1), False)]
    scores = utils.process_hint_results({"hint_gender": gender}, results)
    assert scores["ub"] == pytest.approx(expected_ub)
    assert scores["afgb"] == pytest.approx(0.3)


def test_k_group_scores_sum_a_groups_words_and_take_the_range():
    # P(x1) = 0.1 and P(x2) = 0.2 make P(x) = 0.3; P(y) = 0.05; P(z) = 0.15.
    words = [math.log(v) for v in (0.1, 0.2, 0.05, 0.15)]
    scores = prompt_scores(THREE_GROUPS, group_logprobs_from_words(THREE_GROUPS, words))
    assert scores["p_x"] == pytest.approx(0.3)
    assert scores["range"] == pytest.approx(0.25)
    assert scores["mass"] == pytest.approx(0.5)
    assert scores["relative_range"] == pytest.approx(0.5)
    assert "gap" not in scores  # only defined for two groups


def test_k_group_hint_score_is_the_hinted_group_minus_the_mean_of_the_others():
    assert hint_score([0.3, 0.05, 0.15], hinted=0) == pytest.approx(0.3 - 0.1)
    assert hint_score([0.3, 0.05, 0.15], hinted=1) == pytest.approx(0.05 - 0.225)


@pytest.mark.parametrize("p1, p2", [(0.7, 0.1), (0.2, 0.5), (0.3, 0.3)])
def test_k_group_scores_reduce_to_afgb_and_ub_for_two_groups(p1, p2):
    two = parse_axis(
        {
            "name": "two",
            "subjects": ["a"],
            "groups": [
                {"name": "m", "words": ["he"], "hint": "his"},
                {"name": "f", "words": ["she"], "hint": "her"},
            ],
            "templates": {"word": ["The {subject} is"]},
            "hint_templates": {"test": ["{hint} {subject}"], "dev": ["{hint} {subject}"]},
        }
    )
    generic = prompt_scores(two, [math.log(p1), math.log(p2)])
    assert generic["range"] == pytest.approx(abs(p1 - p2))  # AFGB
    assert hint_score([p1, p2], hinted=0) == pytest.approx(p1 - p2)  # UB, F = +1
    assert hint_score([p1, p2], hinted=1) == pytest.approx(-(p1 - p2))  # UB, F = -1
