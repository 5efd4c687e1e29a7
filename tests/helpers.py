"""Helpers the tests share: a tokenizer for the tiny models, SmolLM2 fine-tuning in memory,
`lm_eval` run as a user runs it, and its P(he), P(she) beside the in-memory ones."""

from __future__ import annotations

import glob
import json
import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
WORD = r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]+|\s+"
# The report's rows, in the order of the paper's tables, then LFTF's ablations.
# Target and toy-axis words the tests use besides those in the shipped prompts.
EXTRA_WORDS = ["he", "she", "they", "church", "mosque", "synagogue", "temple"]
EXTRA_WORDS += ["summer", "winter", "snow", "spring"]


def word_tokenizer():
    """A word-level tokenizer whose pieces carry their leading space, like a BPE's " he":
    every word of the shipped prompts and assets is one token, anything else is <unk>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lftf_tasks import data_dir
    from lftf_train.capability import ASSETS

    texts = [p.read_text(encoding="utf-8") for p in sorted(data_dir().glob("*/*.jsonl"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted(ASSETS.glob("*.txt"))]
    pieces = {m for text in texts for m in re.findall(WORD, text)}
    pieces |= {" " + w for w in EXTRA_WORDS}
    vocab = {"<unk>": 0, "<|endoftext|>": 1}
    vocab.update({p: i for i, p in enumerate(sorted(pieces), start=2)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(WORD), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        pad_token="<|endoftext|>",
    )


def bpe_word_tokenizer():
    """The same words as single tokens of a byte-level BPE (trained on them), for families
    whose tokenizer class transformers imposes whatever the folder says (Qwen2 rebuilds a
    BPE from the vocabulary and merges): " he" and " she" stay single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = word_tokenizer().get_vocab()
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=100_000,
        special_tokens=["<unk>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([w for w in words if not w.startswith("<")], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def finetune_smollm2(smollm2_path, smollm2, cache, **settings):
    """A fresh SmolLM2 fine-tuned in memory with LFTFConfig(**settings): (model, result)."""
    from transformers import AutoModelForCausalLM

    from lftf_train.methods.lftf.config import LFTFConfig
    from lftf_train.methods.lftf.model import wrap_for_training
    from lftf_train.methods.lftf.train import finetune

    _, tok = smollm2
    config = LFTFConfig(**settings)
    blocks = list(range(30)) if config.blocks == "all" else config.blocks
    model = AutoModelForCausalLM.from_pretrained(smollm2_path).eval()
    model = wrap_for_training(model, config, blocks)
    result = finetune(
        model, tok, config, blocks, show_progress=False, log=lambda *_: None, prefix_cache=cache
    )
    return model, result


def lm_eval_cli(model_args: str, out: Path, tasks: str, limit: int | None = None) -> dict:
    """`lm_eval` as a user runs it (a subprocess): {"results": ..., "samples": {task: rows}}."""
    from lftf_tasks import include_path

    cmd = [str(BIN / "lm_eval"), "--model", "hf", "--model_args", model_args]
    cmd += ["--tasks", tasks, "--include_path", include_path(), "--batch_size", "64"]
    cmd += ["--log_samples", "--output_path", str(out)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = glob.glob(f"{out}/*/results_*.json")
    samples = {}
    for path in glob.glob(f"{out}/*/samples_*.jsonl"):
        task = Path(path).name.split("_20")[0].removeprefix("samples_")
        with open(path) as f:
            samples[task] = [json.loads(line) for line in f]
    return {"results": json.loads(Path(results_file).read_text()), "samples": samples}


def lm_eval_probabilities(run: dict) -> dict[str, tuple[float, float]]:
    """prompt -> (P(he), P(she)) as lm-eval logged them (``lm_eval_cli``'s samples)."""
    return {
        s["doc"]["prompt"]: (s["p_he"], s["p_she"])
        for rows in run["samples"].values()
        for s in rows
    }


def in_memory_probabilities(model, tok, n=40) -> dict[str, tuple[float, float]]:
    """prompt -> (P(he), P(she)) of ``model`` for the first n GenBiasEval and GenHintEval
    test prompts, computed as lftf computes them."""
    from lftf_train import data
    from lftf_train.scoring import score_prompts

    prompts = [r["prompt"] for r in data.bias_records("test")][:n]
    prompts += [r["prompt"] for r in data.hint_records("test")][:n]
    return dict(zip(prompts, map(tuple, score_prompts(model, tok, prompts).exp().tolist())))


def max_probability_diff(logged: dict, in_memory: dict) -> float:
    """The largest |P| difference over the in-memory prompts (all must have been logged)."""
    return max(
        max(abs(a - c), abs(b - d)) for p, (c, d) in in_memory.items() for a, b in [logged[p]]
    )


def readme_python_example(marker: str = "simple_evaluate") -> str:
    """The one Python code block of the README or a docs/ page that contains ``marker``,
    as written."""
    root = Path(__file__).parents[1]
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if marker in b]
    return block


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `lftf-train ARGS` run in-process through its entry point;
    argparse errors exit with 2."""
    from lftf_train import cli

    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
