"""What a module receives: run the model only as far as it must go. The prefix cache (the
hidden state entering a block), the editors' keys (an MLP projection's input) and their
second moment all read inputs this way."""

from __future__ import annotations

import torch
from torch import nn


class _Stop(Exception):
    pass


def module_inputs(model, modules: list[nn.Module], batch: dict) -> list[torch.Tensor]:
    """The input (first positional argument, or ``hidden_states``) that each of ``modules``
    receives when ``model`` runs on ``batch``; the forward stops once all have theirs."""
    seen: dict[int, torch.Tensor] = {}

    def hook_for(i):
        def hook(module, args, kwargs):
            seen.setdefault(i, args[0] if args else kwargs["hidden_states"])
            if len(seen) == len(modules):
                raise _Stop

        return hook

    handles = [
        m.register_forward_pre_hook(hook_for(i), with_kwargs=True) for i, m in enumerate(modules)
    ]
    try:
        model(**batch, use_cache=False)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if len(seen) < len(modules):
        raise RuntimeError(f"{len(modules) - len(seen)} of the modules never ran in the forward")
    return [seen[i] for i in range(len(modules))]
