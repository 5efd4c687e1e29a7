"""What the weight-editing baselines (DAMA, ROME, R-ROME, MEMIT) share: edit requests built
from an axis's train prompts, the MLP output projections they rewrite, reading the inputs of
those projections (the "keys") at chosen positions, their second moment over a text corpus,
and the final norm and head that turn a last-block hidden state into logits.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lftf_tasks.axis import Axis
from lftf_train import data
from lftf_train.capture import module_inputs
from lftf_train.families import block_parts, max_positions, text_config
from lftf_train.models import cache_root
from lftf_train.scoring import encode, word_token_id


@dataclass(frozen=True)
class Request:
    """One GenBiasEval-train prompt as an edit request."""

    prompt: str  # "The nurse smiled because"
    subject: str  # "nurse": its last token is where ROME and MEMIT read the key
    phrase: str  # "The nurse": the subject as the prompt writes it (DAMA's KL prompt)


def requests(
    axis: Axis, split: str = "train", limit: int | None = None, seed: int = 0
) -> list[Request]:
    """The axis's bias prompts of a split as edit requests, in the split's order; with
    ``limit``, that many of them drawn with ``seed`` (in the drawn order)."""
    out = []
    for r in data.bias_records(split, axis):
        scale, t = r["template_id"].rsplit("_", 1)
        template = axis.templates[scale][int(t) - 1]
        subject = r[axis.subject_field]
        before = template[: template.index("{subject}")]
        out.append(Request(prompt=r["prompt"], subject=subject, phrase=before + subject))
    return out if limit is None else random.Random(seed).sample(out, min(limit, len(out)))


def sampled_length(model, prompt_tokens: int, wanted: int) -> int:
    """How many tokens to sample after a prompt of ``prompt_tokens``: ``wanted``, cut so that
    prompt and sample fit in the model's positions (``generate`` past a table of positions,
    as GPT-2's, GPT-J's or OPT's, dies with an IndexError)."""
    limit = max_positions(model)
    if limit is None:
        return wanted
    if prompt_tokens >= limit:
        raise ValueError(
            f"a prompt of {prompt_tokens} tokens leaves nothing to sample: the model has "
            f"{limit} positions"
        )
    return min(wanted, limit - prompt_tokens)


def word_ids(tokenizer, words: list[str]) -> list[int]:
    """Each target word's one token after a space (" he"), through the project's target code."""
    return [word_token_id(tokenizer, w, why="the editors' targets") for w in words]


def mlp_out(model, layer: int) -> nn.Module:
    """The MLP's output projection of a block (``mlp.down_proj``, GPT-2's ``mlp.c_proj``,
    OPT's ``fc2``, ...), as the family map names it; the editors rewrite its weight."""
    return model.get_submodule(mlp_out_name(model, layer))


def mlp_out_name(model, layer: int) -> str:
    parts = block_parts(model)
    if parts.mlp_out is None:
        raise ValueError(
            f"family '{parts.family}' has a mixture-of-experts MLP "
            f"({', '.join(parts.expert_weights)}): the editors and DAMA rewrite one MLP "
            "output projection, and which expert's sees a prompt is the router's choice, so "
            "lftf does not edit experts; use lftf-train finetune (full blocks or LoRA)"
        )
    return f"{parts.layers}.{layer}.{parts.mlp_out}"


def mlp_out_weight(model, layer: int) -> torch.Tensor:
    """W of the MLP's output projection as (out, in), whatever the storage: a view of
    GPT-2's (in, out) ``Conv1D`` weight, so in-place updates reach the model."""
    weight = mlp_out(model, layer).weight
    return weight.T if block_parts(model).transposed else weight


class _SoftCapped(nn.Module):
    """The head followed by Gemma 2's logit soft-capping, as the model's forward does it."""

    def __init__(self, head: nn.Module, cap: float):
        super().__init__()
        self.head, self.cap = head, cap

    @property
    def weight(self):
        return self.head.weight

    def forward(self, x):
        return self.cap * torch.tanh(self.head(x) / self.cap)


def final_input_module(model) -> nn.Module:
    """The first module after the last block: its input is the last block's output."""
    return model.get_submodule(block_parts(model).final[0])


def head_of(model) -> tuple[nn.Module, nn.Module]:
    """(final modules, output head): what turns the last block's output into logits."""
    names = block_parts(model).final
    if not names:
        raise ValueError(
            f"family '{block_parts(model).family}': no final norm found after its blocks"
        )
    final = [model.get_submodule(n) for n in names]
    head = model.get_output_embeddings()
    cap = getattr(text_config(model), "final_logit_softcapping", None)
    return (final[0] if len(final) == 1 else nn.Sequential(*final)), (
        _SoftCapped(head, cap) if cap else head
    )


@contextlib.contextmanager
def frozen(model):
    """No parameter of the model needs a gradient inside: the editors optimise vectors only."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def per_prompt(x: torch.Tensor, prompts: int) -> torch.Tensor:
    """(prompts, tokens, features), also from OPT's MLP, which sees (prompts*tokens, features)."""
    return x.view(prompts, -1, x.shape[-1]) if x.ndim == 2 else x


@torch.no_grad()
def inputs_at(model, module: nn.Module, batches, offsets: list[int]) -> torch.Tensor:
    """The input of ``module`` at one position per prompt, stopping the forward there.

    ``batches`` yields keyword arguments for the model (left-padded, so a position counted
    from the end is the same with or without padding); ``offsets`` gives, per prompt, that
    position as a negative index (-1: the last token). Returns (prompts, features), float32.
    """
    out, seen = [], 0
    for batch in batches:
        (inputs,) = module_inputs(model, [module], batch)
        rows = per_prompt(inputs.detach(), len(next(iter(batch.values()))))  # batch size
        index = torch.tensor(offsets[seen : seen + len(rows)], device=rows.device)
        out.append(rows[torch.arange(len(rows), device=rows.device), index].float().cpu())
        seen += len(rows)
    return torch.cat(out)


def prompt_batches(tokenizer, prompts: list[str], device, batch_size: int = 64):
    for i in range(0, len(prompts), batch_size):
        yield encode(tokenizer, prompts[i : i + batch_size], device)


@torch.no_grad()
def second_moments(model, tokenizer, texts: list[str], layers: list[int], max_tokens: int = 256):
    """{layer: C}, C = (1/N) sum over the N tokens of ``texts`` of k k^T, k the layer's
    down-projection input: the uncentred second moment ROME and MEMIT take over Wikipedia
    (float64, on the CPU). One pass for all layers; each text is cut into windows of
    ``max_tokens`` tokens, fewer if the model has fewer positions."""
    max_tokens = min(max_tokens, max_positions(model) or max_tokens)
    modules = {layer: mlp_out(model, layer) for layer in layers}
    device = next(model.parameters()).device
    totals, count = {}, 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        for start in range(0, len(ids), max_tokens):
            window = torch.tensor([ids[start : start + max_tokens]], device=device)
            inputs = module_inputs(model, list(modules.values()), {"input_ids": window})
            for layer, x in zip(modules, inputs):
                keys = per_prompt(x, 1)[0].double().cpu()
                totals[layer] = keys.T @ keys + totals.get(layer, 0)
            count += len(keys)
    dim = next(iter(totals.values())).shape[0]
    if count < dim:  # C would be singular and every solve against it arbitrary
        raise ValueError(
            f"the keys' second moment C needs at least as many corpus tokens as the keys have "
            f"dimensions ({dim}) to be invertible; the corpus gave {count}: raise cov_tokens "
            "(--cov-tokens) or give a longer cov_text"
        )
    return {layer: total / count for layer, total in totals.items()}


def second_moment(model, tokenizer, texts: list[str], layer: int, max_tokens: int = 256):
    return second_moments(model, tokenizer, texts, [layer], max_tokens)[layer]


SEED_WORDS = ("The", "Therefore", "Because", "I", "You")


@torch.no_grad()
def context_templates(model, tokenizer, length_params, seed: int) -> list[str]:
    """ "{}" and prompts prefixed with short texts the model samples (top-k 5, seeded), as
    ROME and MEMIT make them: for each (length, n) of ``length_params``, n // 5 samples from
    each of five seed words, ``length`` tokens in all; "{}" takes the prompt."""
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    templates = ["{}"]
    for length, n_gen in length_params:
        for word in SEED_WORDS:
            ids = tokenizer([word] * (n_gen // 5), return_tensors="pt").to(device)
            prompt = ids.input_ids.shape[1]
            new = sampled_length(model, prompt, max(length - prompt, 1))
            out = model.generate(
                **ids, do_sample=True, top_k=5, max_new_tokens=new, pad_token_id=pad
            )
            for row in out:
                text = tokenizer.decode(row, skip_special_tokens=True)
                templates.append(text.replace("{", "").replace("}", "").strip() + ". {}")
    return templates


def subject_offsets(tokenizer, texts: list[str], subject: str) -> list[int]:
    """Per text, the position of the subject's last token counted from the end (-1: the
    last token), as left padding keeps it; the subject's last occurrence counts."""
    offsets = []
    for text in texts:
        end = text.rindex(subject) + len(subject)
        full = tokenizer(text).input_ids
        head = tokenizer(text[:end]).input_ids
        if full[: len(head)] != head:
            raise ValueError(f"cannot find where {subject!r} ends in the tokens of {text!r}")
        offsets.append(len(head) - 1 - len(full))
    return offsets


CORPUS_ROWS = 128  # samples per generate call


def corpus(
    model, tokenizer, model_id: str, seed: int, n_tokens: int = 20_000, rows: int = CORPUS_ROWS
) -> list[str]:
    """Text for the keys' second moment: sampled from the model itself (top-k 5, seeded),
    ``rows`` samples at a time, each as long as the model's positions allow, cached under
    the lftf cache folder. The reference uses Wikipedia, which is not here."""
    name = f"corpus-v3|{model_id}|{seed}|{n_tokens}"  # the key from before rows could be set
    name += "" if rows == CORPUS_ROWS else f"|{rows}"
    key = hashlib.sha256(name.encode()).hexdigest()[:12]
    path = cache_root() / "corpus" / f"{key}.txt"
    if path.exists():
        return path.read_text(encoding="utf-8").split("\n\x1e\n")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    starts = ["The", "Therefore", "Because", "I", "You", "In", "When", "A", "It", "We"]
    device = next(model.parameters()).device
    texts, tokens = [], 0
    wanted = n_tokens // rows + 8  # one batch, if the positions allow: none may stop early
    while tokens < n_tokens:
        batch = encode(tokenizer, [rng.choice(starts) for _ in range(rows)], device)
        batch.pop("position_ids")
        new = sampled_length(model, batch["input_ids"].shape[1], wanted)
        out = model.generate(
            **batch,
            do_sample=True,
            top_k=5,
            max_new_tokens=new,
            min_new_tokens=new,
            pad_token_id=tokenizer.pad_token_id,
        )
        for row in out:
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            texts.append(text)
            tokens += len(tokenizer(text, add_special_tokens=False).input_ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n\x1e\n".join(texts), encoding="utf-8")
    tmp.rename(path)
    return texts


def read_corpus(path: str | Path) -> list[str]:
    """A user's corpus for the second moment (e.g. Wikipedia text): paragraphs of a file."""
    text = Path(path).read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if p.strip()]
