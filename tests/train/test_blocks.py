import pytest

from lftf_train.blocks import (
    decoder_layers,
    lora_targets,
    resolve_blocks,
    trained_module_names,
)
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training


def test_module_names_are_full_so_suffix_matching_cannot_catch_other_blocks(tiny_llama):
    _, model, _ = tiny_llama
    names = trained_module_names(model, [3], ["attn", "mlp"])
    assert names == ["model.layers.3"]
    assert trained_module_names(model, [1], ["attn"]) == [
        "model.layers.1.self_attn",
        "model.layers.1.input_layernorm",
    ]
    assert lora_targets(model, [2], ["mlp"]) == {
        "target_modules": [
            f"model.layers.2.mlp.{p}" for p in ("gate_proj", "up_proj", "down_proj")
        ],
        "target_parameters": [],
    }


def test_resolve_blocks():
    assert resolve_blocks("auto", 30, [29, 0, 1], top_k=2) == [0, 29]
    assert resolve_blocks("all", 4, None) == [0, 1, 2, 3]
    assert resolve_blocks([3], 4, None) == [3]
    with pytest.raises(ValueError, match=r"out of range: this model has 4 blocks, 0..3"):
        resolve_blocks([4], 4, None)
    with pytest.raises(ValueError, match="needs a BMI ranking"):
        resolve_blocks("auto", 4, None)


def test_decoder_layers_found(tiny_llama):
    _, model, _ = tiny_llama
    name, _, attr, layers = decoder_layers(model)
    assert (name, attr, len(layers)) == ("model.layers", "layers", 4)


def _trainable(peft_model):
    return [n for n, p in peft_model.named_parameters() if p.requires_grad]


@pytest.mark.parametrize(
    "modules, expected_parts",
    [
        ("attn,mlp", {"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"}),
        ("attn", {"self_attn", "input_layernorm"}),
        ("mlp", {"mlp", "post_attention_layernorm"}),
    ],
)
def test_full_method_trains_exactly_the_chosen_parts_of_the_chosen_block(
    tiny_llama, modules, expected_parts
):
    from transformers import AutoModelForCausalLM

    path, _, _ = tiny_llama
    config = LFTFConfig(blocks="2", modules=modules)
    peft_model = wrap_for_training(AutoModelForCausalLM.from_pretrained(path), config, [2])
    names = _trainable(peft_model)
    assert names and all("model.layers.2." in n for n in names)
    wrapped, inner = zip(*(n.split(".modules_to_save.default.") for n in names))
    parts = {w.rsplit(".", 1)[1] for w in wrapped} - {"2"} | {
        i.split(".")[0] for w, i in zip(wrapped, inner) if w.endswith(".2")
    }
    assert parts == expected_parts


def test_lora_method_adds_adapters_to_the_chosen_block_only(tiny_llama):
    from transformers import AutoModelForCausalLM

    path, _, _ = tiny_llama
    config = LFTFConfig(blocks="1", method="lora", lora_r=2, modules="attn")
    peft_model = wrap_for_training(AutoModelForCausalLM.from_pretrained(path), config, [1])
    names = _trainable(peft_model)
    assert names and all("layers.1.self_attn" in n and "lora_" in n for n in names)
    assert {n.split(".lora_")[0].rsplit(".", 1)[1] for n in names} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    }
