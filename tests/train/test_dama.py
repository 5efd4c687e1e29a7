"""DAMA: the closed forms, the plumbing's faithfulness, the saved adapter, the CLI, and a
synthetic model whose MLP writes the gender direction, which DAMA must take out."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import lftf_train
from lftf_tasks.axis import load_axis, load_professions
from lftf_train import cli, data
from lftf_train.blocks import decoder_layers
from lftf_train.config import parse_layer_sets
from lftf_train.editing import mlp_out, requests, word_ids
from lftf_train.methods.dama import dama
from lftf_train.methods.dama.config import DAMAConfig, default_layers
from lftf_train.prefix import PrefixCache
from lftf_train.scoring import score_prompts, slope_scores

from ..helpers import run_cli

GENDER = load_axis("gender")
FAST = {"v_num_grad_steps": 3, "eval_batch_size": 256}


def _basis(d=12, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(40, d, generator=g), torch.randn(40, 5, generator=g)
    return dama.pls_directions(x.double(), y.double(), k)


def test_the_projection_is_symmetric_idempotent_of_rank_d_minus_k_and_kills_q():
    q = _basis()
    assert q.shape == (12, 3)
    assert torch.allclose(q.T @ q, torch.eye(3, dtype=q.dtype), atol=1e-10)  # orthonormal
    p = dama.output_projection(q)
    assert torch.allclose(p, p.T, atol=1e-12)
    assert torch.allclose(p @ p, p, atol=1e-10)
    assert torch.linalg.matrix_rank(p).item() == 12 - 3
    assert torch.allclose(p @ q, torch.zeros_like(q), atol=1e-10)


def test_a_rank_beyond_the_values_dimensions_is_a_clear_error():
    with pytest.raises(ValueError, match=r"DAMAConfig.ranks: rank 13 .*at most 12"):
        _basis(d=12, k=13)


def test_projected_outputs_have_no_component_along_q():
    q = _basis().float()
    weight = torch.randn(12, 30)
    edited = dama.project_output(weight, q)
    outputs = edited @ torch.randn(30, 50)
    assert (q.T @ outputs).abs().max() < 1e-4
    assert (q.T @ (weight @ torch.randn(30, 5))).abs().max() > 1e-2  # the original did not


def test_rank_zero_leaves_the_weights_bit_identical(tiny_llama):
    _, model, tok = tiny_llama
    model = copy.deepcopy(model)
    cache = PrefixCache.build(model, tok, 2, GENDER, 256)
    before = {b: mlp_out(model, b).weight.clone() for b in (2, 3)}
    values = torch.randn(3 * len(cache.states["train"]), 32)
    records = dama.edit_layers(model, cache, values, [2, 3], 0, DAMAConfig(**FAST))
    assert all(torch.equal(mlp_out(model, b).weight, before[b]) for b in (2, 3))
    assert [r["rank"] for r in records] == [0, 0]


def test_layers_are_edited_in_ascending_order_on_the_already_projected_model(
    tiny_llama, monkeypatch
):
    _, model, tok = tiny_llama
    config = DAMAConfig(**FAST)
    cache = PrefixCache.build(model, tok, 1, GENDER, 256)
    values = torch.randn(
        3 * len(cache.states["train"]), 32, generator=torch.Generator().manual_seed(1)
    )
    seen = {}
    collect = dama.mlp_out_inputs

    def spy(model, cache, split, layer, batch_size):
        seen[layer] = collect(model, cache, split, layer, batch_size)
        return seen[layer]

    monkeypatch.setattr(dama, "mlp_out_inputs", spy)
    edited = copy.deepcopy(model)
    dama.edit_layers(edited, cache, values, [2, 1], 4, config)
    assert list(seen) == [1, 2]  # ascending, whatever the order given
    monkeypatch.setattr(dama, "mlp_out_inputs", collect)
    lower_only = copy.deepcopy(model)
    dama.edit_layers(lower_only, cache, values, [1], 4, config)
    u_after = collect(lower_only, cache, "train", 2, 256)
    u_before = collect(model, cache, "train", 2, 256)
    assert torch.allclose(seen[2], u_after, atol=1e-5)  # U of block 2 after block 1's edit
    assert (seen[2] - u_before).abs().max() > 1e-3  # which did change it


def test_the_cached_value_step_equals_a_forward_that_adds_delta_to_the_last_block(tiny_llama):
    """The value loss from cached last-block states (final norm and head only) equals the
    loss of full forwards with delta added to the last block's output, gradient included."""
    _, model, tok = tiny_llama
    config = DAMAConfig(**FAST)
    reqs = requests(GENDER)[:6]
    prompts, kl_prompts = [r.prompt for r in reqs], [f"{r.phrase} is a" for r in reqs]
    target = word_ids(tok, ["she"])[0]
    h = dama.last_block_outputs(model, tok, prompts, 8)
    h_kl = dama.last_block_outputs(model, tok, kl_prompts, 8)
    delta = torch.randn(6, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with dama.frozen(model), torch.no_grad():
        kl_init = F.log_softmax(model(**_batch(tok, kl_prompts)).logits[:, -1], -1)
    with dama.frozen(model):
        cached = dama.value_loss(model, h, h_kl, delta, target, kl_init, config)
        (grad_cached,) = torch.autograd.grad(cached.sum(), delta)
        full = _full_forward_loss(model, tok, prompts, kl_prompts, delta, target, kl_init, config)
        (grad_full,) = torch.autograd.grad(full.sum(), delta)
    assert torch.allclose(cached, full, atol=1e-4)
    assert torch.allclose(grad_cached, grad_full, atol=1e-4)


def _batch(tok, prompts):
    from lftf_train.scoring import encode

    return encode(tok, prompts)


def _full_forward_loss(model, tok, prompts, kl_prompts, delta, target, kl_init, config):
    last = decoder_layers(model)[3][-1]

    def add_delta(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden.clone()
        hidden[:, -1] = hidden[:, -1] + delta  # left padding: -1 is every prompt's last token
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = last.register_forward_hook(add_delta)
    try:
        logp = F.log_softmax(model(**_batch(tok, prompts)).logits[:, -1], -1)
        kl_logp = F.log_softmax(model(**_batch(tok, kl_prompts)).logits[:, -1], -1)
    finally:
        handle.remove()
    h = dama.last_block_outputs(model, tok, prompts, 8)
    kl = (kl_logp.exp() * (kl_logp - kl_init)).sum(-1)
    decay = delta.norm(dim=-1) ** 2 / h.norm(dim=-1)
    return -logp[:, target] + config.kl_factor * kl + config.v_weight_decay * decay


def test_choice_keeps_the_hint_and_minimises_the_relative_slope():
    def entry(layers, rank, rel, ub):
        return {"layers": layers, "rank": rank, "dev": {"a_s_relative": rel, "ub": ub}}

    original = {"ub": 0.4}
    sweep = [
        entry([27], 8, 0.30, 0.39),
        entry([27], 64, 0.01, 0.2),
        entry([25, 26, 27], 8, 0.2, 0.35),
    ]
    metrics = {"hint": "ub"}
    assert dama.choose(sweep, original, metrics, 0.8)["layers"] == [25, 26, 27]
    assert dama.choose(sweep, original, metrics, 0.0)["rank"] == 64
    assert dama.choose(sweep[1:2], original, metrics, 0.8)["rank"] == 64  # none kept: best UB


def test_layer_sets_and_defaults():
    assert default_layers(30) == list(range(19, 28))
    assert default_layers(32) == list(range(21, 30))  # the reference's 7B example
    assert parse_layer_sets("19-21") == [[19, 20, 21]]
    assert parse_layer_sets(["27", "25-27"]) == [[27], [25, 26, 27]]
    assert DAMAConfig(ranks=16).ranks == [16]
    with pytest.raises(ValueError, match="DAMAConfig.ranks"):
        DAMAConfig(ranks="many")
    with pytest.raises(ValueError, match="DAMAConfig.layers"):
        DAMAConfig(layers="a-b")


def test_the_saved_adapter_reproduces_the_edited_model(tiny_llama, tmp_path):
    path, _, tok = tiny_llama
    config = DAMAConfig(model=path, layers="2-3", ranks=[4], **FAST)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    result = lftf_train.debias(model, tok, config)
    result.write(tmp_path)
    edited = result.model
    weights = load_file(tmp_path / "adapter_model.safetensors")
    assert weights and all("mlp.down_proj" in k and (".2." in k or ".3." in k) for k in weights)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), tmp_path).eval()
    prompts = [r["prompt"] for r in data.bias_records("test")][:30]
    expected = score_prompts(edited, tok, prompts)
    assert torch.allclose(score_prompts(loaded, tok, prompts), expected, atol=1e-4)
    original = score_prompts(AutoModelForCausalLM.from_pretrained(path).eval(), tok, prompts)
    assert (original - expected).abs().max() > 1e-4  # the edit did something


def test_a_request_limit_draws_that_many_train_prompts_with_the_seed(tiny_llama):
    path, _, tok = tiny_llama
    axis, train = load_axis("gender"), [r.prompt for r in requests(load_axis("gender"))]
    reqs, keep = dama._drawn_requests(axis, DAMAConfig(model=path, requests=10, seed=3))
    assert (
        len(reqs) == 10
        and keep == sorted(keep)
        and [r.prompt for r in reqs] == [train[i] for i in keep]
    )  # in the split's order, so U (the cache's states at keep) pairs with its values
    assert dama._drawn_requests(axis, DAMAConfig(model=path, requests=10, seed=4))[1] != keep
    config = DAMAConfig(model=path, layers="3", ranks=[2], requests=10, **FAST)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    info = lftf_train.debias(model, tok, config, log=lambda *_: None).record["result"]
    assert info["requests"] == 10 and info["edits"][0]["delta_norm"] > 0


def test_cli_writes_the_adapter_the_record_and_the_dev_sweep(tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    out = tmp_path / "dama"
    argv = ["dama", "--model", path, "--layers", "3", "--layers", "2-3", "--ranks", "2,4"]
    argv += ["--v-num-grad-steps", "3", "--output-dir", str(out)]
    assert cli.main(argv) == 0
    run = json.loads((out / "lftf_run.json").read_text())
    info = run["result"]
    assert len(info["sweep"]) == 4 and info["requests"] == 943
    assert {tuple(e["layers"]) for e in info["sweep"]} == {(3,), (2, 3)}
    chosen = next(
        e for e in info["sweep"] if (e["layers"], e["rank"]) == tuple(info["chosen"].values())
    )
    assert chosen is not None and [r["layer"] for r in info["edits"]] == info["chosen"]["layers"]
    assert all(r["delta_norm"] > 0 and r["rank"] <= info["chosen"]["rank"] for r in info["edits"])
    assert info["timings_s"]["values"] > 0 and run["seed"] == 42 and run["versions"]["lftf"]
    saved = json.loads((out / "lftf_config.json").read_text())
    assert saved["ranks"] == [2, 4] and saved["lftf_method"] == "dama"
    assert "**chosen**" in (out / "dama_sweep.md").read_text()
    assert (out / "dama_sweep.png").stat().st_size > 0
    assert (out / "adapter_config.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "9"], "out of range: the model has blocks 0..3"),
        (["--axis", "religion"], "stereotype slopes"),
        (["--ranks", "x"], "--ranks x: integers such as"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_llama, tmp_path, capsys, args, message):
    path, _, _ = tiny_llama
    code, _, err = run_cli(capsys, "dama", "--model", path, *args, "--output-dir", tmp_path / "o")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


# --- a model built so that one MLP writes the profession's stereotype as a gender direction


def _gendered_model(tok) -> LlamaForCausalLM:
    """Two blocks, hidden size 8. Every embedding has 1 in dimension C; a profession's word
    also has its stereotypical score in dimension P. Block 0's attention (uniform, q = k = 0)
    averages P into dimension M at every position; block 1's MLP reads M (gated by C) and
    writes it into dimension G; the head turns G into +he/-she logits (C lifts both
    pronouns above the rest of the vocabulary). So P(he) - P(she) follows the stereotype."""
    c, p, m, g = 0, 1, 2, 3
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=8,
        intermediate_size=4,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        for norm in (model.model.norm, *[b.input_layernorm for b in model.model.layers]):
            norm.weight.fill_(1.0)
        for block in model.model.layers:
            block.post_attention_layernorm.weight.fill_(1.0)
        emb = model.model.embed_tokens.weight
        emb[:, c] = 1.0
        for entry in load_professions()["kept"]:
            ids = tok(" " + entry["word"].replace("_", " "), add_special_tokens=False).input_ids
            if len(ids) == 1:
                emb[ids[0], p] = 3 * entry["stereotypical"]
        first, second = model.model.layers
        first.self_attn.v_proj.weight[0, p] = 1.0
        first.self_attn.o_proj.weight[m, 0] = 1.0
        second.mlp.gate_proj.weight[0, c] = 2.0
        second.mlp.up_proj.weight[0, m] = 4.0
        second.mlp.down_proj.weight[g, 0] = 1.0
        he, she = word_ids(tok, ["he", "she"])
        head = model.lm_head.weight
        head[he, g], head[she, g] = 3.0, -3.0
        head[he, c] = head[she, c] = 5.0
    return model


def test_dama_removes_the_slope_a_gendered_mlp_writes(tiny_llama):
    _, _, tok = tiny_llama
    model = _gendered_model(tok)
    records = data.bias_records("dev")
    prompts = [r["prompt"] for r in records]

    def slopes():
        return slope_scores(score_prompts(model, tok, prompts), records, GENDER)

    before = slopes()
    assert before["a_s"] > 0.1  # the construction works: the gap follows the stereotype
    config = DAMAConfig(model="synthetic", layers="1", ranks=[1], eval_batch_size=256)
    result = dama.run_dama(model, tok, config, log=lambda *_: None)
    after = slopes()
    assert result["chosen"] == {"layers": [1], "rank": 1}
    assert abs(after["a_s"]) < 0.05 * before["a_s"]
    assert abs(after["a_s_relative"]) < 0.05 * abs(before["a_s_relative"])


def test_the_second_moment_is_k_transpose_k_over_n(tiny_llama):
    from lftf_train.editing import inputs_at, second_moment

    _, model, tok = tiny_llama
    texts = ["The nurse smiled because she was happy.", "The pilot went to bed because he"] * 6
    with pytest.raises(ValueError, match=r"at least as many corpus tokens .* \(64\)"):
        second_moment(model, tok, texts[:2], layer=2, max_tokens=4)  # 15 tokens, 64 dims
    c = second_moment(model, tok, texts, layer=2, max_tokens=4)
    keys = []
    for text in texts:
        ids = tok(text, add_special_tokens=False).input_ids
        for start in range(0, len(ids), 4):
            window = torch.tensor([ids[start : start + 4]])
            n = window.shape[1]
            batch = [{"input_ids": window}] * n
            keys += [inputs_at(model, mlp_out(model, 2), [b], [i - n]) for i, b in enumerate(batch)]
    k = torch.cat(keys).double()
    assert c.shape == (64, 64)
    assert torch.allclose(c, k.T @ k / len(k), atol=1e-6)


def test_whitening_runs_on_a_corpus_sampled_from_the_model(tiny_llama, tmp_path, monkeypatch):
    from lftf_train.editing import corpus

    path, model, tok = tiny_llama
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    texts = corpus(model, tok, path, seed=3, n_tokens=600)
    assert sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts) >= 600
    assert corpus(model, tok, path, seed=3, n_tokens=600) == texts  # cached, same text
    out = tmp_path / "white"
    argv = ["dama", "--model", path, "--layers", "3", "--ranks", "2", "--whitening"]
    argv += ["--cov-tokens", "600", "--v-num-grad-steps", "3", "--output-dir", str(out)]
    assert cli.main(argv) == 0
    run = json.loads((out / "lftf_run.json").read_text())
    assert run["config"]["whitening"] is True and run["result"]["edits"][0]["rank"] == 2
