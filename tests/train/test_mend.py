"""MEND: the gradient's factors, the editor network's algebra, the functional edit, its
training and cache, the CLI; one honest run on SmolLM2."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lftf_train import cli
from lftf_train.editing import frozen
from lftf_train.methods.edit import sequence
from lftf_train.methods.edit.config import EditConfig
from lftf_train.methods.edit.mend import run as mend
from lftf_train.methods.edit.mend.editor import MENDEditor, apply_updates, edit_factors
from lftf_train.methods.edit.mend.factors import FactorRecorder, as_stored, edited_modules
from lftf_train.methods.edit.mend.network import RunningNorm, pseudo_gradient
from lftf_train.methods.edit.mend.train import Example, Replay, example_loss
from lftf_train.scoring import encode, score_prompts

from ..families import tiny_model
from ..helpers import word_tokenizer

PROMPTS = ["The nurse smiled because", "The pilot went to bed because"]
FAST = ["--mend-steps", "6", "--mend-val-every", "3", "--mend-val-requests", "3"]
FAST += ["--cov-tokens", "400", "--edits", "2"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("family", ["llama", "gpt2", "opt"])
def test_recorded_factors_give_the_weight_gradient_exactly(family):
    """sum_t delta_t u_t^T is autograd's gradient of each edited matrix (GPT-2's Conv1D
    stores it transposed; OPT's MLP sees tokens flattened)."""
    tok = word_tokenizer()
    model = tiny_model(family, tok).double()
    names = edited_modules(model, [2, 3])
    batch = encode(tok, PROMPTS)
    recorder = FactorRecorder(model, names)
    with recorder.recording():
        logits = model(**batch).logits[:, -1]
    loss = -logits.log_softmax(-1)[:, 5].sum()
    weights = [model.get_submodule(n).weight for n in names]
    grads = torch.autograd.grad(loss, weights, retain_graph=True)
    factors = recorder.factors(loss)
    for name, grad in zip(names, grads):
        module = model.get_submodule(name)
        ours = as_stored(module, pseudo_gradient(*factors[name]))
        assert torch.allclose(ours, grad, atol=1e-6), name


def test_a_new_editor_with_step_alpha_is_a_plain_gradient_step(tiny_llama):
    _, model, tok = tiny_llama
    model = copy.deepcopy(model).double()
    names = edited_modules(model, [3])
    editor = MENDEditor.for_model(model, names, rank=8, alpha=0.01).double().eval()
    batch = encode(tok, PROMPTS[:1])
    factors = edit_factors(model, names, batch, target=5)
    updates = editor.updates(factors)
    logits = model(**batch).logits[:, -1]
    loss = -logits.log_softmax(-1)[:, 5].mean()
    grads = torch.autograd.grad(loss, [model.get_submodule(n).weight for n in names])
    for name, grad in zip(names, grads):
        assert torch.allclose(updates[name], -0.01 * grad, atol=1e-9), name


def test_running_norm_is_the_identity_until_it_has_statistics_then_standardises():
    norm = RunningNorm(3).eval()
    x = torch.randn(5, 3)
    assert torch.equal(norm(x), x)  # no statistics yet
    norm.train()
    data = torch.randn(40, 3) * torch.tensor([1.0, 5.0, 0.1]) + 2
    for chunk in data.split(7):
        norm(chunk)
    assert torch.allclose(norm.mean.float(), data.mean(0), atol=1e-5)
    norm.eval()
    out = norm(data)
    assert torch.allclose(out.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(0), torch.ones(3), atol=1e-4)


def _examples(model, tok, names, prompts, start):
    states = mend.cached_states(model, tok, prompts, start)
    return [Example(s, 5, [[5], [6]], 0) for s in states]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_functional_edit_leaves_the_weights_alone_until_applied(tiny_llama, dtype):
    """Also on a bf16 model (--dtype bfloat16, GPUs): the editor stays float32, the edited
    weights keep the model's dtype in training as when applied."""
    _, model, tok = tiny_llama
    model = copy.deepcopy(model).to(dtype)
    names = edited_modules(model, [2, 3])
    editor = MENDEditor.for_model(model, names, rank=8, alpha=1.0).eval()  # statistics fixed
    before = {n: model.get_submodule(n).weight.clone() for n in names}
    (example,) = _examples(model, tok, names, PROMPTS[:1], 2)
    windows = mend.cached_states(model, tok, ["I went home and then the cat"], 2)
    replay = Replay(model, 2, names)
    with frozen(model):
        loss, parts = example_loss(replay, editor, example, windows, {"edit": 1.0, "loc": 1.0})
        loss.backward()
    assert all(torch.equal(model.get_submodule(n).weight, w) for n, w in before.items())
    assert parts["kl"] > 0 and editor.alpha.grad.abs().sum() > 0  # the editor is reached
    nll_before = -model(**encode(tok, PROMPTS[:1])).logits[0, -1].log_softmax(-1)[5]
    factors = edit_factors(model, names, encode(tok, PROMPTS[:1]), 5)
    with torch.no_grad():
        apply_updates(model, editor.updates(factors))
    nll_after = -model(**encode(tok, PROMPTS[:1])).logits[0, -1].log_softmax(-1)[5]
    assert not torch.equal(model.get_submodule(names[0]).weight, before[names[0]])
    assert model.get_submodule(names[0]).weight.dtype == dtype
    tolerance = 1e-4 if dtype == torch.float32 else 1e-2  # bf16 sums in another order
    assert abs(nll_after.item() - parts["nll"]) < tolerance  # applied = what training saw
    assert nll_after < nll_before


def test_one_training_step_lowers_the_post_edit_nll(tiny_llama):
    _, model, tok = tiny_llama
    model = copy.deepcopy(model)
    names = edited_modules(model, [2, 3])
    torch.manual_seed(0)
    editor = MENDEditor.for_model(model, names, rank=8, alpha=1e-3)
    examples = _examples(model, tok, names, PROMPTS, 2)
    replay, weights = Replay(model, 2, names), {"edit": 1.0, "loc": 0.0}
    windows = mend.cached_states(model, tok, ["I went home and then the cat"], 2)
    optimizer = torch.optim.Adam(editor.parameters(), lr=1e-2)
    with frozen(model):
        first = [example_loss(replay, editor, e, windows, weights)[1]["nll"] for e in examples]
        loss = sum(example_loss(replay, editor, e, windows, weights)[0] for e in examples)
        loss.backward()
        optimizer.step()
        editor.eval()
        then = [example_loss(replay, editor, e, windows, weights)[1]["nll"] for e in examples]
    assert sum(then) < sum(first)


@pytest.mark.slow  # trains an editor / starts lm-eval's HFLM
def test_training_is_cached_and_the_saved_editor_reloads_to_identical_edits(tiny_llama):
    path, model, tok = tiny_llama
    config = EditConfig(
        model=path, editor="mend", mend_steps=6, mend_val_every=3, mend_val_requests=3
    )
    corpus = lambda: ["The nurse smiled because she was happy and the pilot went to bed"] * 20  # noqa: E731
    chosen = lambda c: sequence.chosen_requests(c, model, tok)  # noqa: E731
    lines = []
    first = mend.prepare(
        model, tok, config, [2, 3], corpus, chosen, log=lines.append, show_progress=False
    )
    assert lines[0].startswith("MEND: training") and len(first.record["curve"]) == 3  # 0, 3, 6
    again = mend.prepare(
        model, tok, config, [2, 3], corpus, chosen, log=lines.append, show_progress=False
    )
    assert lines[-1].startswith("MEND: editor loaded")
    factors = edit_factors(model, first.state.names, encode(tok, PROMPTS[:1]), 5)
    with torch.no_grad():
        a, b = first.state.updates(factors), again.state.updates(factors)
    assert all(torch.equal(a[n], b[n]) for n in a)
    other = EditConfig(**{**config.to_dict(), "mend_lr": 1e-3})  # another setting: retrained
    mend.prepare(model, tok, other, [2, 3], corpus, chosen, log=lines.append, show_progress=False)
    assert sum(line.startswith("MEND: training") for line in lines) == 2


@pytest.mark.slow  # trains an editor / starts lm-eval's HFLM
def test_cli_edits_with_mend_and_lm_eval_s_adapter_is_the_edited_model(tiny_llama, tmp_path):
    from lm_eval.models.huggingface import HFLM

    path, _, tok = tiny_llama
    out = tmp_path / "mend"
    assert (
        cli.main(["edit", "--model", path, "--editor", "mend", *FAST, "--output-dir", str(out)])
        == 0
    )
    run = json.loads((out / "lftf_run.json").read_text())
    edits = json.loads((out / "edits.json").read_text())["edits"]
    assert run["result"]["editor"] == "mend" and len(edits) == 2
    assert run["result"]["blocks"] == [1, 2, 3]  # the top three of four
    names = run["result"]["edited_modules"]
    assert names == [
        f"model.layers.{b}.mlp.{p}_proj" for b in (1, 2, 3) for p in ("gate", "up", "down")
    ]
    saved = load_file(out / "adapter_model.safetensors")
    assert {k.removeprefix("base_model.model.").rsplit(".", 1)[0] for k in saved} == set(names)
    for name in ("mend_editor.safetensors", "mend_training.json", "mend_training.png"):
        assert (out / name).stat().st_size > 0
    assert run["result"]["training"]["curve"][-1]["step"] == 6
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), out).eval()
    lm = HFLM(pretrained=path, peft=str(out), batch_size=2, device="cpu")
    from lm_eval.api.instance import Instance

    reqs = [Instance("loglikelihood", {}, (p, f" {w}"), 0) for p in PROMPTS for w in ("he", "she")]
    logged = torch.tensor([ll for ll, _ in lm.loglikelihood(reqs)]).view(2, 2)
    assert torch.allclose(logged, score_prompts(loaded, tok, PROMPTS), atol=1e-4)
    base = score_prompts(AutoModelForCausalLM.from_pretrained(path).eval(), tok, PROMPTS)
    assert (logged - base).abs().max() > 1e-5  # the edits changed the model


@pytest.mark.smollm2
def test_on_smollm2_a_trained_editor_makes_held_out_targets_likelier(smollm2):
    """A short training (60 edits) on SmolLM2, then each held-out request edited alone on
    the real model's weights: how often its target becomes likelier (stated in the README
    from the full training; here at least 80 %)."""
    model, tok = smollm2
    model = copy.deepcopy(model)
    config = EditConfig(editor="mend", mend_steps=60, mend_val_every=30, mend_val_requests=16)
    blocks = config.blocks(30)
    from lftf_train.editing import corpus

    texts = lambda: corpus(model, tok, "smollm2-135m", config.seed, 1000)  # noqa: E731
    chosen = lambda c: sequence.chosen_requests(c, model, tok)  # noqa: E731
    prepared = mend.prepare(model, tok, config, blocks, texts, chosen, show_progress=False)
    chosen = sequence.chosen_requests(EditConfig(editor="mend"), model, tok)
    by_prompt = {c["request"].prompt: c for c in chosen}
    held = [by_prompt[p] for p in prepared.record["held_out"]]
    ids, labels = sequence.target_token_ids(tok, config.load_axis()), config.load_axis().labels
    likelier = 0
    for item in held:
        edited, r, t = copy.deepcopy(model), item["request"], labels.index(item["target"])
        before = sequence.group_probs(edited, tok, [r.prompt], ids)[0, t]
        mend.edit(edited, tok, r, ids[t][0], blocks, ["{}"], config, prepared.state)
        after = sequence.group_probs(edited, tok, [r.prompt], ids)[0, t]
        likelier += int(after > before)
    assert likelier / len(held) >= 0.8, (likelier, len(held))
