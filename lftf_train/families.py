"""The one place that knows a decoder block's parts, for every model family.

Everything is read off the model itself, not a table of module names:

- the block list: the ``nn.ModuleList`` of ``num_hidden_layers`` modules of the class
  transformers names in ``_no_split_modules`` (``model.layers``, ``transformer.h``,
  ``gpt_neox.layers``, ``model.decoder.layers``);
- attention: the block's child whose class name ends in "Attention"; the MLP: the block's
  other children with parameters that are not norms (``mlp``, or OPT's ``fc1``/``fc2``);
- which norm belongs to which, traced in one forward of block 0: a norm whose output
  attention reads, or that normalises attention's output, is attention's (Llama's
  ``input_layernorm``, Gemma's ``post_attention_layernorm``), likewise for the MLP; a norm
  both read (GPT-J's ``ln_1``, Phi's and Falcon's ``input_layernorm``: attention and MLP
  run in parallel) is *shared* and trains only with the whole block;
- the MLP's output projection (the editors' and DAMA's W): the last ``Linear``/``Conv1D``
  the MLP calls; its input projections: the ones it calls before; GPT-2's ``Conv1D``
  stores W transposed, (in, out), which ``BlockParts.transposed`` records;
- LoRA's targets: every ``Linear``/``Conv1D`` inside a part (fused ``qkv_proj`` and
  ``gate_up_proj`` included), plus the experts' 3-d weights of a mixture-of-experts MLP
  as PEFT ``target_parameters``;
- the final norm: what the model calls between the last block and the head.

What cannot be traced is refused with an error naming the family and the part.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

PROJECTIONS = (nn.Linear, Conv1D)


@dataclass(frozen=True)
class BlockParts:
    """A family's block, as block-relative dotted names (``"mlp.down_proj"``)."""

    family: str  # config.model_type
    layers: str  # dotted name of the block list in the model: "model.layers"
    attn: tuple[str, ...]  # what --modules attn trains: attention and its own norms
    mlp: tuple[str, ...]  # what --modules mlp trains: the MLP and its own norms
    shared: tuple[str, ...] = ()  # norms attention and MLP both read (parallel blocks)
    mlp_out: str | None = None  # the MLP's output projection; None for experts (MoE)
    mlp_in: tuple[str, ...] = ()  # its input projections
    transposed: bool = False  # mlp_out stores W as (in, out) (GPT-2's Conv1D)
    lora: dict[str, tuple[str, ...]] = field(default_factory=dict)  # part -> projections
    expert_weights: tuple[str, ...] = ()  # MoE: the experts' 3-d weights (PEFT parameters)
    final: tuple[str, ...] = ()  # model-level modules between the last block and the head

    @property
    def parallel(self) -> bool:
        return bool(self.shared)

    @property
    def moe(self) -> bool:
        return bool(self.expert_weights)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def text_config(model):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


# Where configs give the positions a model has: Llama's and OPT's max_position_embeddings,
# GPT-2's and GPT-J's n_positions (older GPT-2 configs also n_ctx).
POSITION_FIELDS = ("max_position_embeddings", "n_positions", "n_ctx")


def max_positions(model) -> int | None:
    """How many positions the model has, or None where its config names none. A model with
    a table of positions (GPT-2, GPT-J, OPT) fails with an IndexError past its end."""
    config = text_config(model)
    for name in POSITION_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def num_blocks(model) -> int:
    return text_config(model).num_hidden_layers


def family(model) -> str:
    return getattr(text_config(model), "model_type", type(model).__name__)


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted name, ModuleList) of the decoder blocks."""
    n = num_blocks(model)
    block_classes = set(getattr(model, "_no_split_modules", None) or ())
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) == n
    ]
    blocks = lambda layers: [getattr(b, "original_module", b) for b in layers]  # noqa: E731
    # (a trained block sits inside PEFT's ModulesToSaveWrapper, which keeps the original)
    named = [c for c in candidates if any(type(b).__name__ in block_classes for b in blocks(c[1]))]
    found = named or [c for c in candidates if any(map(_attention_child, blocks(c[1])))]
    if not found:
        raise ValueError(
            f"could not find the {n} decoder blocks of {type(model).__name__} "
            f"(family '{family(model)}'): no nn.ModuleList of {n} blocks of a class in its "
            f"_no_split_modules {sorted(block_classes)}; lftf supports decoder-only "
            "transformers models"
        )
    return found[0]


def block_parts(model: nn.Module) -> BlockParts:
    """The model's ``BlockParts``, traced once per model object (names relative to the
    transformers model, also for a PeftModel around it)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    if model not in _CACHE:
        _CACHE[model] = _trace(model)
    return _CACHE[model]


def _attention_child(block: nn.Module) -> str | None:
    names = [n for n, c in block.named_children() if type(c).__name__.endswith("Attention")]
    return names[0] if len(names) == 1 else None


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower() or isinstance(module, nn.LayerNorm)


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _first_tensor(args, kwargs):
    if args and torch.is_tensor(args[0]):
        return args[0]
    return kwargs.get(
        "hidden_states", next((v for v in kwargs.values() if torch.is_tensor(v)), None)
    )


def _output_tensor(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def _record_calls(model, modules: dict[str, nn.Module]) -> list[tuple[str, object, object]]:
    """(name, input, output) of each of ``modules`` as one short forward calls them."""
    calls, handles = [], []
    for name, module in modules.items():

        def hook(mod, args, kwargs, output, name=name):
            calls.append((name, _first_tensor(args, kwargs), _output_tensor(output)))

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    device = next(model.parameters()).device
    ids = torch.arange(1, 5, device=device)[None] % text_config(model).vocab_size
    try:
        model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _owner(norm: str, calls, attn: str, norms: list[str]) -> str:
    """'attn', 'mlp' or 'shared': which part a norm belongs to, from the traced calls."""
    _, x, y = next(c for c in calls if c[0] == norm)
    part = {n: "norm" if n in norms else "attn" if n == attn else "mlp" for n, _, _ in calls}
    others = [c for c in calls if c[0] != norm and part[c[0]] != "norm"]
    feeds = {part[n] for n, i, _ in others if i is y}  # parts that read its output
    normalises = {part[n] for n, _, o in others if o is x}  # parts whose output it reads
    if feeds == {"attn", "mlp"}:
        return "shared"
    for found in (normalises, feeds):
        if len(found) == 1:
            return found.pop()
    order = [n for n, _, _ in calls if n == norm or part[n] != "norm"]
    before = [part[n] for n in order[: order.index(norm)] if n != norm]
    after = [part[n] for n in order[order.index(norm) + 1 :]]
    return before[-1] if before else after[0]  # a post-norm reads the residual sum


def _trace(model: nn.Module) -> BlockParts:
    layers_name, layers = block_list(model)
    block, fam = layers[0], family(model)
    attn = _attention_child(block)
    if attn is None:
        raise ValueError(
            f"family '{fam}': block {type(block).__name__} has no single child whose class "
            "ends in 'Attention'; add its parts to lftf_train/families.py"
        )
    children = dict(block.named_children())
    norms = [n for n, c in children.items() if _is_norm(c)]
    mlp = {n for n, c in children.items() if n != attn and n not in norms and _has_params(c)}
    if not mlp:
        raise ValueError(f"family '{fam}': block {type(block).__name__} has no MLP")
    leaves = {
        f"{part}.{n}" if n else part: m
        for part in mlp
        for n, m in children[part].named_modules()
        if isinstance(m, PROJECTIONS)
    }
    calls = _record_calls(model, {n: children[n] for n in (attn, *mlp, *norms)})
    owners = {n: _owner(n, calls, attn, norms) for n in norms}
    projections = [
        n for n, _, _ in _record_calls(model, {n: block.get_submodule(n) for n in leaves})
    ]
    experts = tuple(
        f"{part}.{n}"
        for part in sorted(mlp)
        for n, p in children[part].named_parameters()
        if p.ndim == 3
    )
    mlp_out = None if experts or not projections else projections[-1]
    return BlockParts(
        family=fam,
        layers=layers_name,
        attn=(attn, *[n for n in norms if owners[n] == "attn"]),
        mlp=(*sorted(mlp), *[n for n in norms if owners[n] == "mlp"]),
        shared=tuple(n for n in norms if owners[n] == "shared"),
        mlp_out=mlp_out,
        mlp_in=tuple(dict.fromkeys(p for p in projections if p != mlp_out)) if mlp_out else (),
        transposed=isinstance(block.get_submodule(mlp_out), Conv1D) if mlp_out else False,
        lora={
            "attn": tuple(
                f"{attn}.{n}"
                for n, m in children[attn].named_modules()
                if isinstance(m, PROJECTIONS)
            ),
            "mlp": tuple(leaves),
        },
        expert_weights=experts,
        final=_final_modules(model, layers_name),
    )


def _final_modules(model, layers_name: str) -> tuple[str, ...]:
    """Modules the model calls after its last block and before the head (the final norm,
    OPT's project_out), as model-level dotted names."""
    head = model.get_output_embeddings()
    base = layers_name.rsplit(".", 1)[0]
    parent = model.get_submodule(base)
    candidates = {
        f"{base}.{n}": m
        for n, m in parent.named_children()
        if f"{base}.{n}" != layers_name and _has_params(m) and m is not head
    }
    layers = model.get_submodule(layers_name)
    calls = _record_calls(model, {"#last": layers[-1], **candidates})
    order = [n for n, _, _ in calls]
    return tuple(n for n in order[order.index("#last") + 1 :] if n in candidates)
