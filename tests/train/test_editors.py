"""ROME, R-ROME and MEMIT: the closed forms, the plumbing, the sequence of edits, the CLI."""

import copy
import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

import lftf_train
from lftf_tasks.axis import load_axis
from lftf_train import cli, data
from lftf_train.editing import (
    Request,
    context_templates,
    frozen,
    requests,
    subject_offsets,
    word_ids,
)
from lftf_train.methods.edit import memit, rome, sequence
from lftf_train.methods.edit.config import EditConfig
from lftf_train.methods.edit.editors import CODE, EDITORS, HPARAMS, load_editor
from lftf_train.methods.edit.values import SplitAtSubject
from lftf_train.scoring import encode, score_prompts

from ..helpers import run_cli

GENDER = load_axis("gender")


def test_each_editor_reads_its_reference_settings_from_its_yaml():
    assert sorted(p.stem for p in HPARAMS.glob("*.yaml")) == sorted(CODE)
    rome_, r_rome, memit_ = EDITORS["rome"], EDITORS["r-rome"], EDITORS["memit"]
    assert rome_.blocks == (5,) and memit_.blocks == (4, 5, 6, 7, 8)
    assert rome_.context == ((5, 10), (10, 10)) and memit_.context == ((10, 5),)
    assert memit_.needs_moments and memit_.mom2_adjustment and not rome_.mom2_adjustment
    assert r_rome.edit.keywords == {"averaged_key": True} and rome_.edit is rome.edit
    assert EditConfig(editor="memit").blocks(56) == [8, 9, 10, 11, 12]  # 4-8 of 28, scaled


def test_an_editor_yaml_with_an_unknown_or_missing_setting_is_refused(tmp_path):
    bad = tmp_path / "rome.yaml"
    bad.write_text((HPARAMS / "rome.yaml").read_text().replace("blocks:", "block:"))
    with pytest.raises(ValueError, match=r"unknown settings \['block'\], missing \['blocks'\]"):
        load_editor("rome", bad)


def test_a_rank_one_update_maps_the_key_to_the_value():
    g = torch.Generator().manual_seed(0)
    w, key, value, left = (torch.randn(*s, generator=g) for s in ((6, 10), (10,), (6,), (10,)))
    update = rome.rank_one_update(w, key, value, left)
    assert torch.allclose((w.double() + update) @ key.double(), value.double(), atol=1e-10)
    assert torch.linalg.matrix_rank(update).item() == 1


def test_memit_update_is_its_closed_form_and_solves_exactly_without_regularisation():
    g = torch.Generator().manual_seed(1)
    r, k, a = (
        torch.randn(6, 3, generator=g),
        torch.randn(10, 3, generator=g),
        torch.randn(10, 10, generator=g),
    )
    c = (a @ a.T / 10).double()
    expected = r.double() @ k.double().T @ torch.linalg.inv(15.0 * c + k.double() @ k.double().T)
    assert torch.allclose(memit.memit_update(r, k, c, 15.0), expected, atol=1e-10)
    square = torch.randn(10, 10, generator=g)  # full-rank keys, lambda -> 0
    r10, w = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g).double()
    edited = w + memit.memit_update(r10, square, c, 0.0)
    assert torch.allclose(edited @ square.double(), w @ square.double() + r10.double(), atol=1e-8)


def test_the_split_forward_equals_a_plain_forward(tiny_llama):
    _, model, tok = tiny_llama
    reqs = requests(GENDER)[:3]
    texts = ["The nurse smiled because. " + reqs[0].prompt, reqs[1].prompt, reqs[2].prompt]
    texts.append(f"{reqs[0].subject} is a")
    subjects = [reqs[0].subject, reqs[1].subject, reqs[2].subject, reqs[0].subject]
    offsets = [subject_offsets(tok, [t], s)[0] for t, s in zip(texts, subjects)]
    with torch.no_grad():
        plain = model(**encode(tok, texts)).logits
        for start in (1, 3):
            split = SplitAtSubject(model, tok, texts, offsets, start)
            hidden = split.hidden()
            last = model.lm_head(split.last(hidden))
            assert torch.allclose(last, plain[:, -1], atol=1e-4)
            subject = model.lm_head(hidden[-1, 0])  # the KL prompt's subject token
            alone = model(**encode(tok, texts[-1:])).logits[0, offsets[-1]]
            assert torch.allclose(subject, alone, atol=1e-4)


def _edited(tiny_llama, editor, edits=1, log=print, **settings):
    path, model, tok = tiny_llama
    model = copy.deepcopy(model)
    config = EditConfig(model=path, editor=editor, edits=edits, cov_tokens=500, **settings)
    texts = ["The nurse smiled because she was happy and the pilot went to bed because he"] * 20
    result = sequence.run_edits(model, tok, config, lambda: texts, log=log, show_progress=False)
    return model, tok, config, result


@pytest.mark.parametrize("editor", ["rome", "r-rome"])
def test_one_edit_makes_its_target_the_likeliest_next_token(tiny_llama, editor):
    """On a random model little flows between positions, so the subject here is the
    prompt's last word, and its hidden states are tiny, so the clamp and the penalty, both
    relative to |v0|, are loosened: the edit itself must then carry the target."""
    _, model, tok = tiny_llama
    model = copy.deepcopy(model)
    config = EditConfig(editor=editor, clamp_norm_factor=1000.0, v_weight_decay=0.0)
    request = Request(prompt="The nurse smiled because", subject="because", phrase="because")
    (target,) = word_ids(tok, ["she"])
    templates = context_templates(model, tok, config.context, config.seed)
    with torch.no_grad():
        before = model(**encode(tok, [request.prompt])).logits[0, -1]
    assert before.argmax().item() != target
    with frozen(model):
        rome.edit(model, tok, request, target, [1], templates, config, None, editor == "r-rome")
    with torch.no_grad():
        after = model(**encode(tok, [request.prompt])).logits[0, -1]
    assert after.argmax().item() == target


@pytest.mark.parametrize("editor, averaged", [("rome", False), ("r-rome", True)])
def test_r_rome_puts_the_averaged_key_in_the_update_and_rome_the_prompts_own(
    tiny_llama, monkeypatch, editor, averaged
):
    _, model, tok = tiny_llama
    seen = {}
    update = rome.rank_one_update

    def spy(weight, key, value, left):
        seen["key"], seen["value"] = key, value
        return update(weight, key, value, left)

    monkeypatch.setattr(rome, "rank_one_update", spy)
    model, tok, config, result = _edited(tiny_llama, editor, v_num_grad_steps=3)
    request = sequence.chosen_requests(config, copy.deepcopy(tiny_llama[1]), tok)[0]["request"]
    templates = context_templates(tiny_llama[1], tok, config.context, config.seed)
    texts = [t.format(request.prompt) for t in templates]
    keys = rome.keys(tiny_llama[1], tok, texts, subject_offsets(tok, texts, request.subject), 1)
    assert len(templates) == 21  # "{}" and the reference's 20 sampled prefixes
    expected = keys.mean(0) if averaged else keys[0]
    assert torch.allclose(seen["key"], expected, atol=1e-5)
    assert not torch.allclose(keys.mean(0), keys[0], atol=1e-3)  # the two really differ
    weight = rome.mlp_out(model, 1).weight.double()
    assert torch.allclose(weight @ seen["key"].double(), seen["value"].double(), atol=1e-3)


def test_memit_spreads_the_edit_over_its_band(tiny_llama):
    model, tok, _, result = _edited(tiny_llama, "memit", layers="1-2")
    original = tiny_llama[1]
    for block in (1, 2):
        change = rome.mlp_out(model, block).weight - rome.mlp_out(original, block).weight
        assert change.abs().max() > 0
    assert (rome.mlp_out(model, 3).weight == rome.mlp_out(original, 3).weight).all()
    assert result["blocks"] == [1, 2] and result["edits"][0]["blocks"] == [1, 2]


def test_edits_accumulate_in_order_with_counter_targets(tiny_llama, monkeypatch):
    path, model, tok = tiny_llama
    monkeypatch.setattr(sequence, "LOG_EVERY", 2)
    lines = []
    _, _, config, result = _edited(
        tiny_llama, "rome", edits=3, log=lines.append, v_num_grad_steps=3
    )
    assert [line.split(" in ")[0] for line in lines[1:]] == ["rome: 2/3 edits"]  # progress
    chosen = sequence.chosen_requests(config, model, tok)
    assert [r["prompt"] for r in result["edits"]] == [c["request"].prompt for c in chosen]
    probs = sequence.group_probs(
        model,
        tok,
        [c["request"].prompt for c in chosen],
        [[i] for i in word_ids(tok, ["he", "she"])],
    )
    for record, (p_he, p_she) in zip(result["edits"], probs.tolist()):
        assert record["target"] == ("he" if p_he < p_she else "she")  # the less likely one
    fixed = sequence.chosen_requests(EditConfig(model=path, target="she", edits=3), model, tok)
    assert {c["target"] for c in fixed} == {"she"}


def test_the_saved_adapter_reproduces_the_edited_model(tiny_llama, tmp_path):
    path, _, tok = tiny_llama
    config = EditConfig(model=path, editor="memit", layers="1-2", edits=2, cov_tokens=500)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    texts = ["The nurse smiled because she was happy and the pilot went to bed because he"] * 20
    result = lftf_train.debias(model, tok, config, log=lambda *_: None)
    edited = result.model
    assert result.record["result"]["edited_modules"] == [
        "model.layers.1.mlp.down_proj",
        "model.layers.2.mlp.down_proj",
    ]
    edited.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), tmp_path).eval()
    prompts = [r["prompt"] for r in data.bias_records("test")][:30]
    expected = score_prompts(edited, tok, prompts)
    assert torch.allclose(score_prompts(loaded, tok, prompts), expected, atol=1e-4)
    assert texts  # the corpus came from the model (cov_tokens), not from this list


def test_cli_writes_every_edit_with_its_efficacy_and_provenance(tiny_llama, tmp_path, monkeypatch):
    path, _, _ = tiny_llama
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "edit"
    argv = ["edit", "--model", path, "--editor", "memit", "--edits", "2", "--cov-tokens", "400"]
    assert cli.main([*argv, "--output-dir", str(out)]) == 0
    run = json.loads((out / "lftf_run.json").read_text())
    info, edits = run["result"], json.loads((out / "edits.json").read_text())["edits"]
    assert info["editor"] == "memit" and len(edits) == 2 and run["seed"] == 42
    for record in edits:
        assert {
            "prompt",
            "subject",
            "target",
            "p_target_before",
            "p_target_after",
            "seconds",
        } <= set(record)
        assert record["p_target_after"] > record["p_target_before"]
    assert info["summary"]["edits"] == 2 and info["timings_s"]["edits"] > 0
    assert run["config"]["mom2_adjustment"] is True and run["versions"]["lftf"]
    assert json.loads((out / "lftf_config.json").read_text())["editor"] == "memit"
    assert (out / "adapter_model.safetensors").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "9"], "out of range: the model has blocks 0..3"),
        (["--editor", "memit", "--no-mom2-adjustment"], "needs the keys' second moment"),
        (["--edits", "0"], "--edits 0: the gender axis's train split has 943"),
        (["--target", "they"], "--target they: 'counter' or a group"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_llama, tmp_path, capsys, args, message):
    path, _, _ = tiny_llama
    code, _, err = run_cli(capsys, "edit", "--model", path, *args, "--output-dir", tmp_path / "o")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
