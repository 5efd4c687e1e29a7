import json
import re

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


# --- values that cannot be meant: refused by the config itself, so by the API and the CLI

COUNT = "the gender axis's train split has 943 requests; give 1..943"


def _configs():
    from lftf_train.config import LocateConfig
    from lftf_train.evaluate import Evaluation
    from lftf_train.methods.dama import DAMAReportOptions
    from lftf_train.methods.dama.config import DAMAConfig
    from lftf_train.methods.edit.config import EditConfig
    from lftf_train.methods.edit.report import EditReportOptions
    from lftf_train.methods.lftf.report import LFTFReportOptions
    from lftf_train.report import ReportSettings

    return {
        "LFTFReportOptions": LFTFReportOptions,
        "DAMAReportOptions": DAMAReportOptions,
        "EditReportOptions": EditReportOptions,
        "LFTFConfig": LFTFConfig,
        "LocateConfig": LocateConfig,
        "DAMAConfig": DAMAConfig,
        "EditConfig": EditConfig,
        "ReportSettings": ReportSettings,
        "Evaluation": Evaluation,
    }


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("EditConfig", {"edits": 100000}, f"EditConfig.edits: {COUNT} (or leave it unset"),
        ("EditConfig", {"edits": 0}, f"EditConfig.edits: {COUNT}"),
        ("DAMAConfig", {"requests": 944}, f"DAMAConfig.requests: {COUNT}"),
        ("LocateConfig", {"locate_prompts": 944}, f"LocateConfig.locate_prompts: {COUNT}"),
        ("LFTFConfig", {"locate_prompts": 0}, "LFTFConfig.locate_prompts: "),
        ("EditConfig", {"editor": "mend", "mend_val_requests": 943}, "give 1..942"),
        ("DAMAConfig", {"ranks": 0}, "DAMAConfig.ranks: a projection rank is 1 or more"),
        ("DAMAConfig", {"ranks": "0,8"}, "DAMAConfig.ranks: "),
        ("DAMAConfig", {"min_ub_ratio": -1}, "DAMAConfig.min_ub_ratio: "),
        ("DAMAConfig", {"v_lr": 0}, "DAMAConfig.v_lr: must be > 0"),
        ("EditConfig", {"clamp_norm_factor": 0}, "EditConfig.clamp_norm_factor: "),
        ("EditConfig", {"kl_factor": -1}, "EditConfig.kl_factor: must be >= 0"),
        ("EditConfig", {"v_weight_decay": -1}, "EditConfig.v_weight_decay: "),
        ("EditConfig", {"mom2_update_weight": -1}, "EditConfig.mom2_update_weight: "),
        ("EditConfig", {"cov_tokens": 0}, "EditConfig.cov_tokens: "),
        ("EditConfig", {"mend_rank": 0}, "EditConfig.mend_rank: "),
        ("EditConfig", {"mend_lr": 0}, "EditConfig.mend_lr: "),
        ("EditConfig", {"mend_alpha_lr": -1e-4}, "EditConfig.mend_alpha_lr: "),
        ("EditConfig", {"mend_edit_weight": 0}, "EditConfig.mend_edit_weight: "),
        ("EditConfig", {"mend_loc_weight": -1}, "EditConfig.mend_loc_weight: "),
        ("EditConfig", {"mend_steps": 0}, "EditConfig.mend_steps: "),
        ("LFTFConfig", {"batch_size": 0}, "LFTFConfig.batch_size: "),
        ("LFTFConfig", {"num_blocks": 0}, "LFTFConfig.num_blocks: "),
        ("LFTFConfig", {"eval_batch_size": -1}, "LFTFConfig.eval_batch_size: "),
        ("LFTFConfig", {"weight_decay": -0.1}, "LFTFConfig.weight_decay: "),
        ("LFTFConfig", {"max_grad_norm": 0}, "LFTFConfig.max_grad_norm: "),
        ("LFTFConfig", {"select": "best_dev", "patience": 0}, "LFTFConfig.patience: "),
        ("LFTFConfig", {"lora_r": 0}, "LFTFConfig.lora_r: "),
        ("LFTFConfig", {"lora_alpha": 0}, "LFTFConfig.lora_alpha: "),
        ("LFTFConfig", {"lora_dropout": 1.0}, "LFTFConfig.lora_dropout: "),
        ("LFTFConfig", {"lr": float("nan")}, "LFTFConfig.lr: "),
        ("LFTFReportOptions", {"tuned_epochs": 0}, "LFTFReportOptions.tuned_epochs: "),
        ("LFTFReportOptions", {"fpft_lr": 0.0}, "LFTFReportOptions.fpft_lr: "),
        ("LFTFReportOptions", {"transfer_kl": -1}, "LFTFReportOptions.transfer_kl: "),
        ("DAMAReportOptions", {"dama_ranks": "0"}, "DAMAReportOptions.dama_ranks: "),
        ("EditReportOptions", {"mend_steps": 0}, "EditReportOptions.mend_steps: "),
        ("ReportSettings", {"seeds": ""}, "ReportSettings.seeds: "),
        ("Evaluation", {"limit": 0}, "Evaluation.limit: lm-eval's docs per task"),
    ],
)
def test_values_that_cannot_be_meant_are_refused_naming_the_field(name, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _configs()[name](**kwargs)


def test_the_report_s_edit_limit_is_a_count_of_the_train_split():
    from lftf_tasks.axis import load_axis
    from lftf_train.methods.edit.report import EditReportOptions
    from lftf_train.report import ReportSettings

    def settings(n):
        return ReportSettings(options={"edit": EditReportOptions(edit_limit=n)})

    settings(943).check_counts(load_axis("gender"))
    with pytest.raises(ValueError, match=re.escape(f"EditReportOptions.edit_limit: {COUNT}")):
        settings(944).check_counts(load_axis("gender"))


def test_counts_up_to_the_train_split_are_accepted():
    from lftf_train.methods.dama.config import DAMAConfig
    from lftf_train.methods.edit.config import EditConfig

    assert EditConfig(edits=943).edits == 943 and DAMAConfig(requests=943).requests == 943
    assert EditConfig(editor="mend", mend_val_requests=942).mend_val_requests == 942
    assert EditConfig(mend_val_requests=943).editor == "rome"  # held out only by MEND
    assert LFTFConfig(locate_prompts=943).locate_prompts == 943
