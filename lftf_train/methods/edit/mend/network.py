"""MEND's editor network (Mitchell et al. 2022), as pure tensor modules.

A Linear layer's gradient for one sequence is a sum of rank-one terms, sum_t delta_t u_t^T
(u: the layer's input, delta: the loss's gradient at its output). MEND never forms it: an
editor network maps each (u_t, delta_t) to (u~_t, delta~_t), and the edit is

    W <- W - alpha_l * sum_t delta~_t u~_t^T        (``pseudo_gradient``)

with a learned step alpha_l per edited matrix. One network serves every edited matrix of
one shape (gate and up projections share one, down projections another); a per-matrix
scale and shift ("mode") tells them apart. The network is u and delta, normalised by
running statistics, concatenated and passed through residual low-rank layers
z + relu(s * (A B z + b) + o); A starts at zero, so a new network is the identity and its
edit is a plain gradient step of size alpha (tested).

Follows the reference code (eric-mitchell/mend ``algs/mend.py``, EasyEdit's ``MEND.py``
and ``local_nn.py``) in structure: combined input, one hidden layer, identity init,
Welford statistics gathered while training. Differs in two details, both said in the
README: B is drawn with variance 1/dim (the reference draws it with variance 1), and the
edit subtracts (the reference adds, leaving the sign to the learned network).
"""

from __future__ import annotations

import torch
from torch import nn


class RunningNorm(nn.Module):
    """Per-feature standardisation by running mean and variance (Welford), updated only in
    training mode; the identity until two rows have been seen."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("sq_dev", torch.zeros(dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, rows: torch.Tensor) -> None:
        """Fold ``rows`` (n, dim) into the statistics (Chan et al.'s batched Welford)."""
        rows = rows.double()
        n = rows.shape[0]
        if n == 0:
            return
        batch_mean = rows.mean(0)
        batch_sq = ((rows - batch_mean) ** 2).sum(0)
        total = self.count + n
        shift = batch_mean - self.mean
        self.mean += shift * n / total
        self.sq_dev += batch_sq + shift**2 * self.count * n / total
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.update(x.detach())
        if self.count < 2:
            return x
        std = (self.sq_dev / (self.count - 1)).sqrt()
        return (x - self.mean.to(x.dtype)) / (std.to(x.dtype) + 1e-7)


class LowRankResidual(nn.Module):
    """z + relu(scale[mode] * (A B z + b) + shift[mode]); A = 0 at the start (identity)."""

    def __init__(self, dim: int, rank: int, modes: int):
        super().__init__()
        rank = min(rank, dim)
        self.a = nn.Parameter(torch.zeros(dim, rank))
        self.b = nn.Parameter(torch.randn(rank, dim) / dim**0.5)
        self.bias = nn.Parameter(torch.zeros(dim))
        self.scale = nn.Parameter(torch.ones(modes, dim))
        self.shift = nn.Parameter(torch.zeros(modes, dim))

    def forward(self, z: torch.Tensor, mode: int) -> torch.Tensor:
        pre = (z @ self.b.T) @ self.a.T + self.bias
        return z + torch.relu(pre * self.scale[mode] + self.shift[mode])


class EditorNet(nn.Module):
    """The editor of every matrix of shape (out, in): (u, delta) -> (u~, delta~)."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, modes: int, hidden: int = 1):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        dim = in_dim + out_dim
        self.norm_u, self.norm_delta = RunningNorm(in_dim), RunningNorm(out_dim)
        self.layers = nn.ModuleList(LowRankResidual(dim, rank, modes) for _ in range(hidden + 1))

    def forward(self, u: torch.Tensor, delta: torch.Tensor, mode: int):
        """``u`` (tokens, in), ``delta`` (tokens, out): the transformed factors."""
        dtype = self.layers[0].a.dtype  # the editor's own (float32), whatever the model's
        z = torch.cat([self.norm_u(u.to(dtype)), self.norm_delta(delta.to(dtype))], -1)
        for layer in self.layers:
            z = layer(z, mode)
        return z.split([self.in_dim, self.out_dim], -1)


def pseudo_gradient(u: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """sum_t delta_t u_t^T, (out, in): a Linear layer's weight gradient from its factors."""
    return delta.T @ u


def nonzero_rows(u: torch.Tensor, delta: torch.Tensor):
    """The token rows where both factors are nonzero (padding and positions the loss does
    not reach add nothing to the gradient), as (tokens, dim) matrices."""
    u, delta = u.reshape(-1, u.shape[-1]), delta.reshape(-1, delta.shape[-1])
    keep = (u != 0).any(-1) & (delta != 0).any(-1)
    return u[keep], delta[keep]
