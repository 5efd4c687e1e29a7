"""The matrices MEND edits and the factors of their gradients.

MEND edits every projection of the MLPs of the top blocks (EasyEdit's Llama setting: gate,
up and down projections of the last three blocks; GPT-2's c_fc and c_proj; OPT's fc1 and
fc2), as the family map names them. For each, a forward hook keeps the layer's input u and
output y; the gradient of a loss at y is delta; sum_t delta_t u_t^T is then exactly the
weight's gradient, without ever forming it (tested against autograd).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from lftf_train.editing import mlp_out_name
from lftf_train.families import block_parts


def edited_modules(model, blocks: list[int]) -> list[str]:
    """Model-level names of the MLP projections of ``blocks`` (inputs first, output last)."""
    parts = block_parts(model)
    mlp_out_name(model, blocks[0])  # refuses mixture-of-experts MLPs with the reason
    return [f"{parts.layers}.{b}.{n}" for b in blocks for n in (*parts.mlp_in, parts.mlp_out)]


def weight_shape(module: nn.Module) -> tuple[int, int]:
    """(out, in) of a projection, whatever its storage (GPT-2's Conv1D keeps (in, out))."""
    w = module.weight
    return (w.shape[1], w.shape[0]) if isinstance(module, Conv1D) else tuple(w.shape)


def as_stored(module: nn.Module, update: torch.Tensor) -> torch.Tensor:
    """An (out, in) update in the orientation the module stores its weight."""
    return update.T if isinstance(module, Conv1D) else update


class FactorRecorder:
    """Inside ``recording()``, every forward keeps each named module's input and output;
    ``factors(loss)`` then gives {name: (u, delta)}, each (tokens, features)."""

    def __init__(self, model: nn.Module, names: list[str]):
        self.modules = {n: model.get_submodule(n) for n in names}
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}

    @contextmanager
    def recording(self):
        def hook(name):
            def keep(module, args, output):
                if not output.requires_grad:  # frozen weights: make y a leaf to reach delta
                    output = output.detach().requires_grad_()
                self.inputs[name], self.outputs[name] = args[0].detach(), output
                return output

            return keep

        handles = [m.register_forward_hook(hook(n)) for n, m in self.modules.items()]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def factors(self, loss: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        names = list(self.modules)
        deltas = torch.autograd.grad(loss, [self.outputs[n] for n in names])
        out = {}
        for name, delta in zip(names, deltas):
            u = self.inputs[name]
            out[name] = (u.reshape(-1, u.shape[-1]), delta.reshape(-1, delta.shape[-1]))
        self.inputs.clear()
        self.outputs.clear()
        return out
