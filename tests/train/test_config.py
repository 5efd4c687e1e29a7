import json

import pytest

from lftf_train.methods.lftf.config import LFTFConfig


def test_defaults_are_the_papers():
    c = LFTFConfig()
    assert (c.lr, c.epochs, c.batch_size, c.method, c.locate_prompts) == (1e-5, 2, 32, "full", 100)
    assert c.modules == ["attn", "mlp"] and c.terms == ["he", "she"] and c.blocks == "auto"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"modules": "attn,ffn"}, "modules"),
        ({"terms": "it"}, "terms"),
        ({"method": "qlora"}, "method"),
        ({"blocks": "last"}, "blocks"),
        ({"blocks": "-1"}, "blocks"),
        ({"lr": 0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"bmi_source": "logits"}, "bmi_source"),
        ({"patience": 2}, "patience"),
    ],
)
def test_bad_values_fail_early_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"LFTFConfig.{field}"):
        LFTFConfig(**kwargs)


def test_comma_lists_are_parsed_sorted_and_deduplicated():
    c = LFTFConfig(blocks="10,3,10", modules="mlp,attn", terms="she")
    assert c.blocks == [3, 10] and c.modules == ["attn", "mlp"] and c.terms == ["she"]


def test_round_trip_through_json_and_overrides_win(tmp_path):
    c = LFTFConfig(lr=3e-4, blocks="29", select="best_dev", patience=2)
    c.save(tmp_path / "c.json")
    assert LFTFConfig.from_file(tmp_path / "c.json") == c
    assert LFTFConfig.from_file(tmp_path / "c.json", lr=1e-3).lr == 1e-3
    assert json.loads((tmp_path / "c.json").read_text())["blocks"] == [29]


def test_yaml_config_and_unknown_fields(tmp_path):
    (tmp_path / "c.yaml").write_text("method: lora\nlora_r: 4\nblocks: all\n")
    c = LFTFConfig.from_file(tmp_path / "c.yaml")
    assert (c.method, c.lora_r, c.blocks) == ("lora", 4, "all")
    (tmp_path / "bad.yaml").write_text("learning_rate: 1e-4\n")
    with pytest.raises(ValueError, match="unknown LFTFConfig field.*learning_rate"):
        LFTFConfig.from_file(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError):
        LFTFConfig.from_file(tmp_path / "missing.json")


def test_every_field_has_help():
    assert all(LFTFConfig.help().values())
