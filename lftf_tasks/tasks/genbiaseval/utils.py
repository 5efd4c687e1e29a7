"""lm-eval hooks of the gender axis.

Generated from lftf_tasks/axes/gender.yaml by lftf_tasks.generate; do not edit, edit the spec.
"""

from lftf_tasks import labour, slopes
from lftf_tasks.axis import load_axis
from lftf_tasks.hooks import TaskHooks

_hooks = TaskHooks(load_axis("gender"))  # data: lftf_tasks.build.data_dir(), built on first use
load_bias = _hooks.load_bias
load_hint = _hooks.load_hint
process_bias_results = _hooks.process_bias_results
process_hint_results = _hooks.process_hint_results
factual_slope = slopes.factual_slope
slope_intercept = slopes.slope_intercept
stereotype_slope = slopes.stereotype_slope
bls_slope = labour.bls_slope
bls_r = labour.bls_r
