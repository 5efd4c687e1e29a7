import math

import pytest

from .task_utils import load_task_utils

utils = load_task_utils()


def test_scores_from_log_probabilities_match_hand_computed_values():
    scores = utils.pronoun_scores(math.log(0.30), math.log(0.10))
    assert scores["p_he"] == pytest.approx(0.30)
    assert scores["p_she"] == pytest.approx(0.10)
    assert scores["afgb"] == pytest.approx(0.20)
    assert scores["gap"] == pytest.approx(0.20)
    assert scores["pronoun_mass"] == pytest.approx(0.40)
    assert scores["relative_gap"] == pytest.approx(0.50)
    assert scores["log_p_she"] == pytest.approx(math.log(0.10))


def test_afgb_is_symmetric_and_gap_signed():
    he_more = utils.pronoun_scores(math.log(0.6), math.log(0.2))
    she_more = utils.pronoun_scores(math.log(0.2), math.log(0.6))
    assert he_more["afgb"] == pytest.approx(she_more["afgb"]) == pytest.approx(0.4)
    assert he_more["gap"] == pytest.approx(0.4)
    assert she_more["gap"] == pytest.approx(-0.4)


def test_equal_probabilities_score_zero_bias():
    scores = utils.pronoun_scores(math.log(0.25), math.log(0.25))
    assert scores["afgb"] == 0 and scores["relative_gap"] == 0


def test_relative_gap_is_defined_when_no_mass_on_pronouns():
    scores = utils.pronoun_scores(-1e4, -1e4)  # exp underflows to 0.0
    assert scores["pronoun_mass"] == 0.0 and scores["relative_gap"] == 0.0


def test_bias_results_read_lm_eval_loglikelihood_pairs_in_choice_order():
    results = [(math.log(0.5), True), (math.log(0.125), False)]  # choices ["he", "she"]
    scores = utils.process_bias_results({"prompt": "x"}, results)
    assert scores["p_he"] == pytest.approx(0.5) and scores["p_she"] == pytest.approx(0.125)
    assert "ub" not in scores


@pytest.mark.parametrize("hint, expected_ub", [("his", 0.3), ("her", -0.3)])
def test_ub_rewards_following_the_hint(hint, expected_ub):
    results = [(math.log(0.4), True), (math.log(0.1), False)]
    scores = utils.process_hint_results({"hint": hint}, results)
    assert scores["ub"] == pytest.approx(expected_ub)
    assert scores["afgb"] == pytest.approx(0.3)
