"""The knowledge editors' ``apply``: the chosen editor over a sequence of requests; the
matrices it edited become a PEFT adapter, every edit goes to ``edits.json``."""

from __future__ import annotations

from lftf_tasks.outputs import write_json
from lftf_train.adapters import wrap_edited
from lftf_train.editing import corpus, read_corpus
from lftf_train.methods.edit import sequence
from lftf_train.methods.edit.config import EditConfig
from lftf_train.methods.edit.editors import EDITORS
from lftf_train.registry import Adapted, Context
from lftf_train.tables import span


def apply(model, tokenizer, config: EditConfig, context: Context) -> Adapted:
    """Edit ``model`` in place, one request after another."""

    def texts() -> list[str]:
        if config.cov_text:
            return read_corpus(config.cov_text)
        return corpus(model, tokenizer, context.resolved_model, config.seed, config.cov_tokens)

    result = sequence.run_edits(
        model, tokenizer, config, texts, log=context.log, show_progress=context.show_progress
    )
    edits = {"edits": result.pop("edits"), "contexts": result.pop("contexts")}
    editor, prepared = EDITORS[config.editor], result.pop("prepared")
    names = editor.modules(model, result["blocks"])
    summary, blocks = result["summary"], span(result["blocks"])
    label = editor.label
    artifacts = {"edits.json": lambda folder, _: write_json(folder / "edits.json", edits)}
    if prepared.record is not None:  # an editor trained for this model (MEND)
        result["training"] = prepared.record
    artifacts.update(prepared.artifacts)
    return Adapted(
        model=wrap_edited(model, names),
        details={
            "corpus": config.cov_text or f"{config.cov_tokens} tokens sampled from the model",
            "edited_modules": names,
            **result,
        },
        settings=f"{summary['edits']} sequential edits, blocks {blocks}",
        label=f"{label} ({summary['edits']} edits, block(s) {blocks})",
        summary=(
            f"{config.editor}: {summary['edits']} edits, mean P(target) "
            f"{summary['mean_p_target_before']:.3f} -> {summary['mean_p_target_after']:.3f} "
            f"({summary['success_rate']:.0%} made the target the likeliest group)"
        ),
        row={
            "layers": result["blocks"],
            "edits": summary["edits"],
            "efficacy": summary["success_rate"],
        },
        artifacts=artifacts,
    )
