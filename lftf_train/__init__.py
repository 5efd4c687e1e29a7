"""LFTF: locate the blocks most tied to gender bias, then fine-tune only those; and the
baselines it is compared with, each a registered method.

    import lftf_train
    from lftf_train import LFTFConfig

    model, tokenizer = lftf_train.load_model("smollm2-135m")
    result = lftf_train.debias(model, tokenizer, LFTFConfig(lr=1e-4, epochs=7))
    result.save_pretrained("out")      # lm_eval --model_args pretrained=BASE,peft=out

Names load on first use (``import lftf_train`` alone imports no torch). Every registered
method's config class is exported by its name (``LFTFConfig``, ``DAMAConfig``, ...).
"""

__version__ = "0.1.0"

_API = {
    "debias": "lftf_train.api",
    "locate": "lftf_train.api",
    "load_model": "lftf_train.api",
    "get_lftf_model": "lftf_train.api",
    "lftf_loss": "lftf_train.api",
    "DebiasResult": "lftf_train.api",
    "Ranking": "lftf_train.api",
    "target_token_ids": "lftf_train.scoring",
    "RunConfig": "lftf_train.config",
    "LocateConfig": "lftf_train.config",
    "Adapted": "lftf_train.registry",
    "Context": "lftf_train.registry",
    "ReportRow": "lftf_train.registry",
    "ReportPart": "lftf_train.registry",
    "register_method": "lftf_train.registry",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    from lftf_train.registry import methods

    for method in methods().values():
        if method.config_cls.__name__ == name:
            return method.config_cls
    raise AttributeError(f"module 'lftf_train' has no attribute {name!r}")


def __dir__():
    from lftf_train.registry import methods

    return sorted({*globals(), *_API, *(m.config_cls.__name__ for m in methods().values())})
