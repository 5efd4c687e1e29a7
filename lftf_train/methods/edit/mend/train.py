"""Training a MEND editor (the outer loop) on the axis's train requests.

For a request (prompt, counter target), as in the reference: the editor turns the factors
of the target's NLL on the unedited model into weight changes dW, applied functionally
(``torch.func.functional_call``: the model's weights stay untouched and gradients reach the
editor); the loss is c_edit * NLL(target | prompt) on the edited weights + c_loc *
KL(original || edited) over short windows of text sampled from the model. Adam on the
networks and on the steps alpha, gradients accumulated over several requests, and a
validation on held-out requests that keeps the best editor and stops early.

Only the edited top blocks depend on the editor, so the hidden states entering the lowest
edited block are computed once per prompt and window (the same replay as LFTF's prefix
cache): every step runs the edited blocks and the head, never the whole model.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from lftf_train.blocks import decoder_layers
from lftf_train.editing import head_of
from lftf_train.families import block_parts
from lftf_train.methods.edit.mend.editor import MENDEditor, target_nll
from lftf_train.methods.edit.mend.factors import FactorRecorder, as_stored
from lftf_train.prefix import block_inputs, collate, starting_at_block


@dataclass
class Example:
    state: torch.Tensor  # (tokens, d): what enters the lowest edited block
    target: int  # the target group's first word
    group_ids: list  # every group's word ids (for P(group))
    target_group: int


@dataclass
class Curve:
    points: list[dict] = field(default_factory=list)
    best: dict | None = None
    stopped: str = ""


class Replay:
    """The model from block ``start`` up on cached states, with weights replaced by name."""

    def __init__(self, model, start: int, names: list[str]):
        self.model, self.start = model, start
        _, self.parent, attr, _ = decoder_layers(model)
        layers = block_parts(model).layers
        self.head = head_of(model)[1]
        self.relative = {}
        for name in names:
            block, rest = name[len(layers) + 1 :].split(".", 1)
            self.relative[name] = f"{attr}.{int(block) - start}.{rest}.weight"
        self.modules = {n: model.get_submodule(n) for n in names}

    def hidden(self, states: list[torch.Tensor], updates: dict | None = None):
        """(last hidden states (rows, tokens, d), attention mask) of the batch of states."""
        batch = collate(states)
        with starting_at_block(self.model, self.start):
            if not updates:
                out = self.parent(**batch, use_cache=False)
            else:
                weights = {self.relative[n]: self._edited(n, dw) for n, dw in updates.items()}
                out = torch.func.functional_call(
                    self.parent, weights, args=(), kwargs={**batch, "use_cache": False}
                )
        return out.last_hidden_state, batch["attention_mask"].bool()

    def _edited(self, name: str, dw: torch.Tensor) -> torch.Tensor:
        """W + dW in W's dtype, as ``apply_updates`` leaves it (a 16-bit model stays 16-bit)."""
        weight = self.modules[name].weight
        return (weight + as_stored(self.modules[name], dw)).to(weight.dtype)

    def last_logits(self, states, updates=None) -> torch.Tensor:
        hidden, _ = self.hidden(states, updates)
        return self.head(hidden[:, -1]).float()


def locality_kl(replay: Replay, windows: list[torch.Tensor], updates: dict) -> torch.Tensor:
    """Mean over the windows' tokens of KL(original || edited) of the next-token distribution."""
    with torch.no_grad():
        hidden, mask = replay.hidden(windows)
        before = replay.head(hidden[mask]).float().log_softmax(-1)
    hidden, mask = replay.hidden(windows, updates)
    after = replay.head(hidden[mask]).float().log_softmax(-1)
    return (before.exp() * (before - after)).sum(-1).mean()


def edit_updates(replay: Replay, editor: MENDEditor, example: Example) -> dict:
    """The editor's dW for one example, from the factors of its NLL on the current weights."""
    recorder = FactorRecorder(replay.model, editor.names)
    with torch.enable_grad(), recorder.recording():
        nll = target_nll(replay.last_logits([example.state]), example.target)
        factors = recorder.factors(nll)
    return editor.updates(factors)


def example_loss(replay, editor, example, windows, weights) -> tuple[torch.Tensor, dict]:
    updates = edit_updates(replay, editor, example)
    nll = target_nll(replay.last_logits([example.state], updates), example.target)
    kl = locality_kl(replay, windows, updates)
    loss = weights["edit"] * nll + weights["loc"] * kl
    return loss, {"nll": nll.item(), "kl": kl.item()}


def group_p(logits: torch.Tensor, group_ids) -> list[float]:
    probs = logits.float().softmax(-1)[0]
    return [probs[ids].sum().item() for ids in group_ids]


@torch.no_grad()
def validate(replay, editor, examples, windows, weights, before) -> dict:
    """Each held-out request edited alone from the unedited model: NLL after, P(target)
    before and after, how often the edit made the target likelier and the likeliest group,
    and the locality KL on held-out windows. ``before``: each example's group
    probabilities on the unedited model (``unedited_probs``)."""
    editor.eval()
    rows = []
    for i, (ex, p_before) in enumerate(zip(examples, before)):
        updates = edit_updates(replay, editor, ex)
        logits = replay.last_logits([ex.state], updates)
        after = group_p(logits, ex.group_ids)
        window = [windows[(i + j) % len(windows)] for j in range(2)]
        rows.append(
            {
                "nll": target_nll(logits, ex.target).item(),
                "kl": locality_kl(replay, window, updates).item(),
                "p_before": p_before[ex.target_group],
                "p_after": after[ex.target_group],
                "likelier": after[ex.target_group] > p_before[ex.target_group],
                "likeliest": max(range(len(after)), key=after.__getitem__) == ex.target_group,
            }
        )
    editor.train()
    mean = lambda k: sum(float(r[k]) for r in rows) / len(rows)  # noqa: E731
    out = {k: mean(k) for k in ("nll", "kl", "p_before", "p_after", "likelier", "likeliest")}
    out["loss"] = weights["edit"] * out["nll"] + weights["loc"] * out["kl"]
    return out


@torch.no_grad()
def unedited_probs(replay, examples) -> list[list[float]]:
    return [group_p(replay.last_logits([ex.state]), ex.group_ids) for ex in examples]


def cached_states(model, tokenizer, texts: list[str], block: int) -> list[torch.Tensor]:
    return [s.detach() for s in block_inputs(model, tokenizer, texts, block, batch_size=32)]


class _Validation:
    """Validates on the held-out requests, keeps the best editor state, counts patience."""

    def __init__(self, replay, editor, data, weights, config, log):
        self.replay, self.editor, self.data, self.weights = replay, editor, data, weights
        self.config, self.log, self.curve = config, log, Curve()
        self.best_state, self.stale, self.start = None, 0, time.perf_counter()
        self.before = unedited_probs(replay, data["val"])  # the same at every validation

    def __call__(self, step: int, running: list[dict]) -> bool:
        """Validate after ``step`` training edits (``running``: their loss terms); False
        when patience has run out."""
        mean = lambda k: sum(p[k] for p in running) / len(running) if running else None  # noqa: E731
        point = {
            "step": step,
            "seconds": round(time.perf_counter() - self.start, 1),
            "train_nll": mean("nll"),
            "train_kl": mean("kl"),
            "val": validate(
                self.replay,
                self.editor,
                self.data["val"],
                self.data["val_windows"],
                self.weights,
                self.before,
            ),
        }
        self.curve.points.append(point)
        self.log(_describe(point))
        if self.curve.best is None or point["val"]["loss"] < self.curve.best["val"]["loss"]:
            self.curve.best, self.stale = point, 0
            self.best_state = copy.deepcopy(self.editor.state_dict())
            return True
        self.stale += 1
        if self.stale < self.config.mend_patience:
            return True
        self.curve.stopped = f"early stop at step {step}: no better validation in {self.stale}"
        return False


def train_editor(
    model, editor: MENDEditor, start: int, data: dict, config, log, show_progress
) -> Curve:
    """Train ``editor`` in place on ``data`` (train, val, windows, val_windows: lists of
    Examples and window states entering block ``start``); the best validated state (step 0,
    the untrained editor, included) is kept. Returns the training curve."""
    replay = Replay(model, start, editor.names)
    train, windows = data["train"], data["windows"]
    weights = {"edit": config.mend_edit_weight, "loc": config.mend_loc_weight}
    optimizer = torch.optim.Adam(
        [
            {"params": list(editor.nets.parameters()), "lr": config.mend_lr},
            {"params": [editor.alpha], "lr": config.mend_alpha_lr},
        ]
    )
    rng, order, running = random.Random(config.seed), [], []
    validation = _Validation(replay, editor, data, weights, config, log)
    editor.train()
    validation(0, running)
    steps = range(1, config.mend_steps + 1)
    for step in tqdm(steps, desc="MEND editor", unit="edit", disable=not show_progress or None):
        if not order:
            order = rng.sample(range(len(train)), len(train))
        window = rng.sample(windows, config.mend_loc_windows)
        loss, parts = example_loss(replay, editor, train[order.pop()], window, weights)
        (loss / config.mend_accumulation).backward()
        running.append(parts)
        if step % config.mend_accumulation == 0:
            torch.nn.utils.clip_grad_norm_(editor.parameters(), 100.0)
            optimizer.step()
            optimizer.zero_grad()
        if step % config.mend_val_every == 0 or step == config.mend_steps:
            if not validation(step, running):
                break
            running = []
    editor.load_state_dict(validation.best_state)
    editor.eval()
    return validation.curve


def _describe(point: dict) -> str:
    v, train = point["val"], ""
    if point["train_nll"] is not None:
        train = f"train NLL {point['train_nll']:.3f}, KL {point['train_kl']:.4f}; "
    return (
        f"MEND step {point['step']} ({point['seconds']:.0f} s): {train}held-out edits: NLL "
        f"{v['nll']:.3f}, P(target) {v['p_before']:.3f} -> {v['p_after']:.3f}, likelier "
        f"{v['likelier']:.0%}, likeliest {v['likeliest']:.0%}, KL {v['kl']:.4f}"
    )
