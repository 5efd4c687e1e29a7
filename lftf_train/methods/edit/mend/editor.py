"""A MEND editor for one model: an ``EditorNet`` per weight shape, a learned step per edited
matrix, and the edit itself (``updates``: factors -> weight changes; ``apply_updates``)."""

from __future__ import annotations

import torch
from torch import nn

from lftf_train.methods.edit.mend.factors import FactorRecorder, as_stored, weight_shape
from lftf_train.methods.edit.mend.network import EditorNet, nonzero_rows, pseudo_gradient


def _key(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


class MENDEditor(nn.Module):
    """Editor networks (shared by matrices of one shape, a mode each) and the steps alpha."""

    def __init__(
        self, names: list[str], shapes: list[tuple[int, int]], rank: int, alpha: float, hidden=1
    ):
        super().__init__()
        self.names, self.shapes = list(names), [tuple(s) for s in shapes]
        groups: dict[str, list[str]] = {}
        for name, shape in zip(self.names, self.shapes):
            groups.setdefault(_key(shape), []).append(name)
        self.mode = {n: members.index(n) for members in groups.values() for n in members}
        self.nets = nn.ModuleDict(
            {
                key: EditorNet(int(key.split("x")[1]), int(key.split("x")[0]), rank, len(m), hidden)
                for key, m in groups.items()
            }
        )
        self.alpha = nn.Parameter(torch.full((len(self.names),), float(alpha)))
        self.settings = {"rank": rank, "alpha_init": alpha, "hidden": hidden}

    @classmethod
    def for_model(cls, model, names: list[str], rank: int, alpha: float, hidden: int = 1):
        shapes = [weight_shape(model.get_submodule(n)) for n in names]
        return cls(names, shapes, rank, alpha, hidden)

    def updates(self, factors: dict) -> dict[str, torch.Tensor]:
        """{name: dW (out, in)} = -alpha * sum_t delta~_t u~_t^T from {name: (u, delta)}."""
        out = {}
        for i, name in enumerate(self.names):
            u, delta = nonzero_rows(*factors[name])
            net = self.nets[_key(self.shapes[i])]
            u_t, delta_t = net(u, delta, self.mode[name])
            out[name] = -self.alpha[i] * pseudo_gradient(u_t, delta_t)
        return out


def target_nll(logits: torch.Tensor, target: int) -> torch.Tensor:
    """-log P(target) from next-token logits (..., vocab), averaged over the leading dims."""
    return -logits.float().log_softmax(-1)[..., target].mean()


def edit_factors(model, names: list[str], batch: dict, target: int) -> dict:
    """(u, delta) of each named matrix for the NLL of ``target`` after the batch's prompt."""
    recorder = FactorRecorder(model, names)
    with torch.enable_grad(), recorder.recording():
        logits = model(**batch, logits_to_keep=1, use_cache=False).logits[:, -1]
        return recorder.factors(target_nll(logits, target))


@torch.no_grad()
def apply_updates(model, updates: dict[str, torch.Tensor]) -> None:
    """W += dW for every named matrix, in the model's own orientation and dtype (the sum
    is rounded once, as training's functional edit rounds it)."""
    for name, update in updates.items():
        weight = model.get_submodule(name).weight
        dw = as_stored(model.get_submodule(name), update.detach()).to(weight.device)
        weight.copy_((weight + dw).to(weight.dtype))
