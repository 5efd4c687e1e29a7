"""The method seam: one registry, one Python API, one record schema, the axis in every
method; and a method registered from outside the package reaches every surface."""

import csv
import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

import lftf_train
from lftf_train import DAMAConfig, EditConfig, LFTFConfig, PBConfig, cli
from lftf_train.registry import methods, unregister_method
from lftf_train.scoring import score_prompts

from ..helpers import readme_python_example, run_cli

QUIET = {"log": lambda *_: None}
PROMPTS = ["The nurse smiled because", "The pilot went to bed because", "The cook laughed because"]
# The same settings through the CLI and through debias(), per method.
SETTINGS = {
    "lftf": (LFTFConfig, ["--blocks", "3", "--epochs", "1", "--lr", "1e-3"]),
    "dama": (DAMAConfig, ["--layers", "2-3", "--ranks", "2", "--v-num-grad-steps", "3"]),
    "edit": (EditConfig, ["--editor", "memit", "--layers", "1-2", "--edits", "2"]),
    "pb": (PBConfig, []),
}
IN_MEMORY = {
    "lftf": {"blocks": "3", "epochs": 1, "lr": 1e-3},
    "dama": {"layers": "2-3", "ranks": 2, "v_num_grad_steps": 3},
    "edit": {"editor": "memit", "layers": "1-2", "edits": 2},
    "pb": {},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # MEMIT's corpus, sampled once, shared
        env.setenv("LFTF_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def cli_outputs(tiny_llama, tmp_path_factory, cache):
    """Every built-in method run once through `lftf-train` on the tiny model."""
    path, _, _ = tiny_llama
    root = tmp_path_factory.mktemp("methods")
    for name, (_, flags) in SETTINGS.items():
        argv = [name, "--model", path, *flags, "--cov-tokens", "400"] if name == "edit" else None
        argv = argv or [name, "--model", path, *flags]
        assert cli.main([*argv, "--output-dir", str(root / name)]) == 0, name
    return root


def _fresh(path):
    return AutoModelForCausalLM.from_pretrained(path).eval()


@pytest.mark.parametrize("name", ["lftf", "dama", "edit"])
def test_debias_in_memory_equals_the_cli_s_saved_adapter(tiny_llama, cli_outputs, name):
    path, _, tok = tiny_llama
    cls, _ = SETTINGS[name]
    config = cls(model=path, **IN_MEMORY[name], **({"cov_tokens": 400} if name == "edit" else {}))
    result = lftf_train.debias(_fresh(path), tok, config, **QUIET)
    assert result.method == name and isinstance(result.model, PeftModel)
    saved = PeftModel.from_pretrained(_fresh(path), cli_outputs / name).eval()
    expected = score_prompts(result.model, tok, PROMPTS)
    assert torch.allclose(score_prompts(saved, tok, PROMPTS), expected, atol=1e-5)
    assert (expected - score_prompts(_fresh(path), tok, PROMPTS)).abs().max() > 1e-5


def test_every_method_writes_one_record_schema(cli_outputs):
    records = {m: json.loads((cli_outputs / m / "lftf_run.json").read_text()) for m in SETTINGS}
    keys = {m: sorted(r) for m, r in records.items()}
    assert len({tuple(k) for k in keys.values()}) == 1, keys
    assert {"method", "config", "result", "load_with", "seed", "versions"} <= set(keys["lftf"])
    for name, record in records.items():
        assert record["method"] == name and record["axis"] == "gender"
        saved = json.loads((cli_outputs / name / "lftf_config.json").read_text())
        assert saved["lftf_method"] == name
    assert "--system_instruction" in records["pb"]["load_with"]
    assert ",peft=" in records["dama"]["load_with"] and ",peft=" not in records["pb"]["load_with"]


def test_a_saved_config_loads_only_as_its_own_method(cli_outputs, tiny_llama, tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "finetune",
        "--config",
        cli_outputs / "dama" / "lftf_config.json",
        "--output-dir",
        tmp_path / "o",
    )
    assert code == 2 and "config of method 'dama'" in err and not (tmp_path / "o").exists()


def test_save_pretrained_writes_what_the_cli_writes(tiny_llama, cli_outputs, tmp_path):
    path, _, tok = tiny_llama
    result = lftf_train.debias(_fresh(path), tok, LFTFConfig(model=path, **IN_MEMORY["lftf"]))
    out = result.save_pretrained(tmp_path / "api")
    assert {p.name for p in (cli_outputs / "lftf").iterdir()} == {p.name for p in out.iterdir()}
    record = json.loads((out / "lftf_run.json").read_text())
    assert record["load_with"].endswith(f"pretrained={path},peft={out}")


def test_get_lftf_model_trains_the_chosen_blocks_with_the_loss_function(tiny_llama):
    path, _, tok = tiny_llama
    model = lftf_train.get_lftf_model(_fresh(path), LFTFConfig(model=path, blocks="2"))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(".layers.2." in n for n in trained)
    from lftf_train.scoring import encode

    logits = model(**encode(tok, PROMPTS)).logits[:, -1]
    ids = lftf_train.target_token_ids(tok)
    loss = lftf_train.lftf_loss(logits, ids)
    logp = logits.float().log_softmax(-1)
    assert loss.item() == pytest.approx(-(logp[:, ids[0][0]] + logp[:, ids[1][0]]).mean().item())
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n in trained)
    with pytest.raises(ValueError, match="tokenizer"):
        lftf_train.get_lftf_model(_fresh(path), LFTFConfig(model=path))


def test_locate_ranks_blocks_in_memory(tiny_llama):
    path, model, tok = tiny_llama
    ranking = lftf_train.locate(model, tok, locate_prompts=8)
    assert sorted(ranking.order) == [0, 1, 2, 3] and ranking.top(1) == [ranking.order[0]]
    assert ranking.scores[ranking.order[0]] == max(ranking.scores)


# --- the axis in every method -----------------------------------------------------------


def test_the_editors_edit_towards_the_axis_groups(tiny_llama, tmp_path, capsys, cache):
    path, _, _ = tiny_llama
    out = tmp_path / "religion"
    argv = ["edit", "--model", path, "--axis", "religion", "--edits", "3"]
    code, _, err = run_cli(capsys, *argv, "--v-num-grad-steps", "2", "--output-dir", out)
    assert code == 0, err[-2000:]
    edits = json.loads((out / "edits.json").read_text())["edits"]
    religion = {"christianity", "islam", "judaism", "hinduism"}
    assert {e["target"] for e in edits} <= religion
    assert {e["target_word"] for e in edits} <= {"church", "mosque", "synagogue", "temple"}
    for e in edits:  # counter: the group the original model found least likely
        assert {f"p_{g}_after" for g in religion} <= set(e)
    run = json.loads((out / "lftf_run.json").read_text())
    assert set(run["result"]["summary"]["targets"]) == religion and run["axis"] == "religion"


def test_dama_refuses_an_axis_without_slopes_before_loading(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "dama",
        "--model",
        "/no/such/model",
        "--axis",
        "religion",
        "--output-dir",
        tmp_path / "o",
    )
    assert code == 2 and "stereotype slopes" in err and "no such folder" not in err
    assert not (tmp_path / "o").exists()


def test_dama_removes_the_values_of_the_axis_words():
    assert DAMAConfig().targets == ["he", "she", "they"]
    assert DAMAConfig(targets="he,she").targets == ["he", "she"]


# --- a method from outside the package ----------------------------------------------------


@pytest.fixture
def toy_method():
    """The method of one's own in docs/methods/custom.md (it scales the head's logits),
    registered from outside the package by running that page's code block as written."""
    namespace = {"__name__": "readme_scale_logits"}
    exec(readme_python_example("register_method"), namespace)
    yield namespace["ScaleLogitsConfig"]
    unregister_method("scale-logits")


def test_a_registered_method_is_a_command_and_an_api_method(toy_method, tiny_llama, capsys):
    path, _, tok = tiny_llama
    ScaleLogitsConfig = toy_method
    assert "scale-logits" in methods()
    code, top, _ = run_cli(capsys, "--help")
    assert code == 0 and "scale-logits" in top and "scale the head's logits" in top
    code, out, _ = run_cli(capsys, "scale-logits", "--help")
    assert code == 0 and "--factor" in out and "Default: 0.5" in out
    assert lftf_train.ScaleLogitsConfig is ScaleLogitsConfig  # exported like the built-ins
    result = lftf_train.debias(_fresh(path), tok, ScaleLogitsConfig(model=path, factor=0.5))
    from lftf_train.scoring import encode

    batch = encode(tok, PROMPTS)
    with torch.no_grad():
        scaled = result.model(**batch).logits
        plain = _fresh(path)(**batch).logits
    assert torch.allclose(scaled, 0.5 * plain, atol=1e-5)


@pytest.mark.slow
def test_a_registered_method_is_a_report_row(toy_method, tiny_llama, tmp_path, capsys):
    path, _, _ = tiny_llama
    out = tmp_path / "report"
    code, usage, _ = run_cli(capsys, "report", "--help")
    assert code == 0 and "Scale logits" in " ".join(usage.split())  # --help lists the rows
    assert "report: Scale logits row" in usage and "--report-factor" in usage  # its own flag
    argv = ["report", "--model", path, "--rows", "Scale logits", "--limit", "8", "--seeds", "1"]
    argv += ["--general-tasks", "none", "--report-factor", "0.3"]
    code, _, err = run_cli(capsys, *argv, "--output-dir", out)
    assert code == 0, err[-3000:]
    with open(out / "results.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert rows["Scale logits"]["status"] == "ok"
    assert rows["Scale logits"]["settings"] == "logits x 0.3"  # the flag reached the row
    assert rows["Scale logits"]["afgb_avg"] != rows["Original"]["afgb_avg"]
    report = (out / "report.md").read_text()
    assert "| Scale logits |" in report
    assert "Scale logits multiplies every logit by 0.3." in report  # its paragraph
    assert "(scale_logits.png)" in report and (out / "scale_logits.png").stat().st_size > 0
    record = json.loads((out / "rows" / "scale_logits" / "lftf_run.json").read_text())
    assert record["method"] == "scale-logits" and record["config"]["factor"] == 0.3
    code, _, err = run_cli(capsys, "report", "--model", path, "--rows", "Nope", "--output-dir", out)
    assert code == 2 and "Scale logits" in err  # the error lists the rows, the toy's too


def test_an_installed_package_registers_its_methods_through_an_entry_point(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from lftf_train import registry

    (tmp_path / "my_lftf_methods.py").write_text(readme_python_example("register_method"))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [EntryPoint("scale", "my_lftf_methods", registry.ENTRY_POINTS)]
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert "scale-logits" in registry.methods()
        assert registry.get_method("scale-logits").config_cls.__name__ == "ScaleLogitsConfig"
    finally:
        unregister_method("scale-logits")


def test_every_method_can_evaluate_before_and_after_the_prompt_baseline_too(
    tiny_llama, tmp_path, capsys
):
    path, _, _ = tiny_llama
    out = tmp_path / "pb"
    code, stdout, err = run_cli(
        capsys,
        "pb",
        "--model",
        path,
        "--evaluate",
        "--limit",
        "4",
        "--general-tasks",
        "none",
        "--output-dir",
        out,
    )
    assert code == 0, err[-3000:]
    evaluation = json.loads((out / "lftf_run.json").read_text())["evaluation"]
    assert set(evaluation["rows"]) == {"original", "PB"} and evaluation["limit"] == 4
    assert evaluation["lm_eval_before"] != evaluation["lm_eval_after"]  # the instruction counts
    assert "| PB |" in (out / "summary.md").read_text() and "| PB |" in stdout
