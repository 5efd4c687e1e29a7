"""Bias axes as data: spec checks, the religion axis, and a spec of one's own run end to end
through `lftf-build-axis` and a real lm_eval call."""

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from lftf_tasks.axis import AxisSpecError, build_bias, build_hint, load_axis, parse_axis

BIN = Path(sys.executable).parent
TOY = {
    "name": "season",
    "description": "toy axis for tests",
    "subjects": ["nurse", "pilot", "baker", "judge", "clerk", "tailor"],
    "seed": 3,
    "groups": [
        {"name": "summer", "words": ["summer"], "hint": "beach"},
        {"name": "winter", "words": ["winter", "snow"], "hint": "ski"},
        {"name": "spring", "words": ["spring"], "hint": "blossom"},
    ],
    "templates": {
        "word": ["The {subject} smiled in the", "The {subject} rested in the"],
        "phrase": ["The {subject} went on holiday in the"],
    },
    "hint_templates": {
        "test": ["After the {hint} trip, the {subject} rested in the"],
        "dev": ["Thinking of the {hint}, the {subject} smiled in the"],
    },
}


def _spec(**changes):
    return {**TOY, **changes}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"groups": TOY["groups"][:1]}, "at least two groups"),
        ({"templates": {"word": ["The person smiled"]}}, "{subject}"),
        ({"hint_templates": {"test": ["The {subject} smiled"], "dev": ["x"]}}, "{hint}"),
        ({"subjects": ["nurse", "nurse"]}, "duplicates"),
        ({"split_sizes": {"word": [1, 1, 1], "phrase": [2, 2, 2]}}, "adding up to 12"),
        ({"split_fractions": [0.5, 0.5, 0.5]}, "adding up to 1"),
        (
            {"groups": [*TOY["groups"], {"name": "autumn", "words": ["snow"], "hint": "x"}]},
            "two groups",
        ),
        (
            {"groups": [*TOY["groups"], {"name": "late autumn", "words": ["fall"], "hint": "x"}]},
            "letters, digits and _",
        ),
    ],
)
def test_bad_specs_fail_with_a_message_naming_the_problem(changes, message):
    with pytest.raises(AxisSpecError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_axis(_spec(**changes))


def test_missing_spec_file_names_the_builtin_axes(tmp_path):
    with pytest.raises(AxisSpecError, match="gender"):
        load_axis(tmp_path / "nope.yaml")


def test_religion_axis_splits_40_20_40_and_shares_hints_evenly():
    axis = load_axis("religion")
    assert axis.labels == ["christianity", "islam", "judaism", "hinduism"]
    bias = build_bias(axis)
    assert len(bias) == 262 * 9
    for scale in axis.scales:
        counts = Counter(r["split"] for r in bias if r["scale"] == scale)
        assert (counts["train"], counts["dev"], counts["test"]) == (314, 157, 315)
    for split in ("test", "dev"):
        hints = build_hint(axis, split)
        assert len(hints) == 786
        for t in ("1", "2", "3"):
            per_group = Counter(r["hint_religion"] for r in hints if r["template_id"].endswith(t))
            assert sorted(per_group.values()) == [65, 65, 66, 66]


def test_build_axis_folder_runs_in_lm_eval_and_scores_k_groups(tiny_llama, tmp_path):
    """A spec of one's own -> lftf-build-axis -> lm_eval --include_path: the per-prompt
    range, hint score and group probabilities equal a direct softmax of the model."""
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from lftf_train.scoring import encode

    path, model, tok = tiny_llama
    spec = tmp_path / "season.yaml"
    spec.write_text(yaml.safe_dump(TOY))
    out = tmp_path / "season_tasks"
    cmd = [str(BIN / "lftf-build-axis"), str(spec), "--output-dir", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "data" / "season_biaseval" / "test.jsonl").exists()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={path},dtype=float32",
        tasks=["season_biaseval", "season_hinteval"],
        task_manager=TaskManager(include_path=str(out), include_defaults=False),
        device="cpu",
        batch_size=8,
        log_samples=True,
    )
    samples = results["samples"]["season_hinteval"]
    assert len(samples) == 6
    ids = {
        w: tok(" " + w, add_special_tokens=False).input_ids
        for w in ("summer", "winter", "snow", "spring")
    }
    assert all(len(v) == 1 for v in ids.values())
    for sample in samples:
        doc = sample["doc"]
        with torch.no_grad():
            logits = model(**encode(tok, [doc["prompt"]]), logits_to_keep=1).logits[0, -1]
        p = logits.double().softmax(-1)
        groups = [p[ids["summer"]], p[ids["winter"]] + p[ids["snow"]], p[ids["spring"]]]
        groups = [g.item() for g in groups]
        hinted = ["summer", "winter", "spring"].index(doc["hint_season"])
        others = [g for i, g in enumerate(groups) if i != hinted]
        assert sample["range"] == pytest.approx(max(groups) - min(groups), rel=1e-3)
        assert sample["hint_score"] == pytest.approx(groups[hinted] - sum(others) / 2, rel=1e-3)
        assert sample["p_winter"] == pytest.approx(groups[1], rel=1e-3)
    group = results["results"]["season_biaseval"]
    assert math.isfinite(group["range,none"]) and group["range,none"] > 0


def test_a_json_spec_loads_like_yaml(tmp_path):
    spec = tmp_path / "season.json"
    spec.write_text(json.dumps(TOY))
    axis = load_axis(spec)
    assert axis.labels == ["summer", "winter", "spring"] and axis.bias_task == "season_biaseval"
    assert axis.choices == ["summer", "winter", "snow", "spring"]
    assert len(build_bias(axis)) == 6 * 3


def test_naming_an_axis_and_its_split_sizes_reads_no_published_file(tmp_path, monkeypatch):
    """Task names, configs and --help need the spec only; the professions are read when
    prompts are built."""
    from lftf_tasks import axis as axis_module

    monkeypatch.delenv("LFTF_REFERENCE_DIR", raising=False)
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    monkeypatch.setenv("LFTF_REFERENCE_URL", "http://127.0.0.1:9/{name}")
    axis_module._load_axis.cache_clear()
    try:
        gender = axis_module.load_axis("gender")
        assert gender.split_size("train") == 943 and gender.uses_professions
        assert not list(tmp_path.iterdir())
    finally:
        axis_module._load_axis.cache_clear()
