import copy

import numpy as np
import pytest
import torch
from torch import nn

from lftf_train import data, plots
from lftf_train import locating as locate
from lftf_train.blocks import decoder_layers
from lftf_train.scoring import target_token_ids


def _logit_gap_fn(tok):
    """Signed log P(he) - log P(she): of order 1 even on a random model, unlike P(he)."""
    (he,), (she,) = target_token_ids(tok)
    return lambda logits: (
        logits.float().log_softmax(-1)[:, he] - logits.float().log_softmax(-1)[:, she]
    )


def test_identity_blocks_score_zero_and_the_only_real_block_ranks_first(tiny_llama):
    _, model, tok = tiny_llama
    model = copy.deepcopy(model)
    with torch.no_grad():  # blocks 0, 1, 3 add nothing to the residual stream: exact identities
        for i, layer in enumerate(decoder_layers(model)[3]):
            if i != 2:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
    prompts = data.sample_prompts("train", 6, seed=0)
    scores = locate.skip_scores(model, tok, prompts, bias_fn=_logit_gap_fn(tok), batch_size=4)
    assert locate.ranking(scores)[0] == 2
    assert scores[2] > 1e-3
    assert [scores[i] for i in (0, 1, 3)] == pytest.approx([0, 0, 0], abs=1e-6)


def test_hook_matches_deleting_the_block(tiny_llama):
    _, model, tok = tiny_llama
    _, parent, attr, layers = decoder_layers(model)
    prompts = data.sample_prompts("train", 5, seed=2)
    bias_fn = _logit_gap_fn(tok)

    def bias_per_prompt():  # one prompt at a time: no padding involved
        return torch.cat(
            [
                bias_fn(model(**tok(p, return_tensors="pt"), use_cache=False).logits[:, -1])
                for p in prompts
            ]
        ).double()

    with torch.no_grad():
        full = bias_per_prompt()
        expected = []
        try:
            for i in range(len(layers)):
                setattr(parent, attr, nn.ModuleList([b for j, b in enumerate(layers) if j != i]))
                expected.append((bias_per_prompt() - full).abs().mean().item())
        finally:
            setattr(parent, attr, layers)
    assert decoder_layers(model)[3] is layers
    scores = locate.skip_scores(model, tok, prompts, bias_fn=bias_fn, batch_size=3)
    assert min(expected) > 1e-4  # every block matters, so a no-op hook would fail here
    assert scores == pytest.approx(expected, abs=1e-5)


def test_skip_hook_handles_keyword_input_and_tuple_output():
    class TupleBlock(nn.Module):
        def forward(self, hidden_states, scale=1.0):
            return hidden_states * 3 + scale, "extra"

    block = TupleBlock()
    block.register_forward_hook(locate._skip_hook, with_kwargs=True)
    x = torch.randn(2, 3)
    out, extra = block(hidden_states=x)
    assert torch.equal(out, x) and extra == "extra"
    out, extra = block(x, scale=2.0)
    assert torch.equal(out, x)


def _bars(panel) -> list[bool]:
    """Left to right, whether each bar of a panel (RGB pixels) is drawn in tab:red."""
    red = np.all(np.abs(panel - [0.839, 0.153, 0.157]) < 0.02, axis=-1)
    gray = np.all(np.abs(panel - [0.498, 0.498, 0.498]) < 0.02, axis=-1)
    columns = (red | gray).sum(0) > 20  # bar columns, not text or tick marks
    bars, start = [], None
    for x, filled in enumerate([*columns, False]):
        if filled and start is None:
            start = x
        elif not filled and start is not None:
            bars.append(red[:, start:x].sum() > gray[:, start:x].sum())
            start = None
    return bars


def test_plot_locators_draws_one_panel_per_locator_with_its_top_block_in_red(tmp_path):
    import matplotlib.image

    path = plots.plot_locators(
        {"bmi": [0.1, 0.4, 0.2, 0.3], "skip": [0.01, 0.02, 0.05, 0.03]},
        tmp_path / "locators.png",
        "BMI vs skip",
        "lftf test",
    )
    image = matplotlib.image.imread(path)[..., :3]
    half = image.shape[1] // 2
    assert _bars(image[:, :half]) == [False, True, False, False]  # bmi: block 1 on top
    assert _bars(image[:, half:]) == [False, False, True, False]  # skip: block 2 on top
