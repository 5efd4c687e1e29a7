"""The example configs load as LFTFConfig and name what the README says they do."""

from pathlib import Path

import pytest

from lftf_train.methods.lftf.config import LFTFConfig

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize(
    "name, model",
    [
        ("qwen2.5-7b.yaml", "Qwen/Qwen2.5-7B"),
        ("llama-3-8b.yaml", "meta-llama/Meta-Llama-3-8B"),
        ("vicuna-7b-v1.5.yaml", "lmsys/vicuna-7b-v1.5"),
        ("llama-2-70b.yaml", "meta-llama/Llama-2-70b-hf"),
    ],
)
def test_example_configs_are_valid(name, model):
    config = LFTFConfig.from_file(EXAMPLES / name)
    assert config.model == model and config.dtype == "bfloat16" and config.blocks == "auto"
    if "70b" in name:
        assert config.method == "lora" and config.device_map == "auto"


def test_general_tasks_script_names_mmlu_and_nine_tasks():
    text = (EXAMPLES / "general_tasks.sh").read_text()
    general = text.split("general=")[1].split()[0].split(",")
    assert len(general) == 9 and "genbiaseval,genhinteval,mmlu" in text
