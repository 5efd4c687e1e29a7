"""The built-in debiasing methods, one folder each; importing a folder registers its method
(``lftf_train.registry``). Adding a method is a folder and one line here. The order of the
lines is the order of `lftf-train --help` and of the report's rows (the paper's tables)."""

# isort: skip_file
from lftf_train.methods import lftf  # noqa: F401  LFTF, FPFT and the ablations
from lftf_train.methods import pb  # noqa: F401  the prompt-based baseline
from lftf_train.methods import dama  # noqa: F401  DAMA
from lftf_train.methods import edit  # noqa: F401  ROME, R-ROME, MEMIT
