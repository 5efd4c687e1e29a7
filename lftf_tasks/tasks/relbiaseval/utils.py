"""lm-eval hooks of the religion axis.

Generated from lftf_tasks/axes/religion.yaml by lftf_tasks.generate; do not edit, edit the spec.
"""

from lftf_tasks.axis import load_axis
from lftf_tasks.hooks import TaskHooks

_hooks = TaskHooks(load_axis("religion"))  # data: lftf_tasks.build.data_dir(), built on first use
load_bias = _hooks.load_bias
load_hint = _hooks.load_hint
process_bias_results = _hooks.process_bias_results
process_hint_results = _hooks.process_hint_results
